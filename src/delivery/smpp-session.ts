// What is done on one SMPP connection for the link: bind it, answer the gateway's own requests,
// and end it politely. The link (smpp-link.ts) decides when; this knows how.

import type smpp from 'smpp';
import { INTERFACE_VERSION } from './smpp-pdu.js';
import type { SmppConfig } from './types.js';

/** How long ending a session waits for unbind_resp and for the socket to close before destroying it. */
const CLOSE_GRACE_MS = 1000;

export function bindSession(session: smpp.Session, cfg: SmppConfig, password: string, onResponse: smpp.ResponseCallback): void {
  const params = {
    system_id: cfg.systemId,
    password,
    system_type: cfg.systemType,
    interface_version: INTERFACE_VERSION,
  };
  if (cfg.bindMode === 'transceiver') session.bind_transceiver(params, onResponse);
  else session.bind_transmitter(params, onResponse);
}

/** Each of the gateway's requests must be answered, or a strict gateway drops the session. */
export function answerGatewayRequests(session: smpp.Session, onUnbind: () => void): void {
  session.on('enquire_link', (pdu: smpp.PDU) => session.send(pdu.response()));
  session.on('deliver_sm', (pdu: smpp.PDU) => {
    // Delivery receipts and mobile-originated messages: memfa does not use them, but an
    // unanswered deliver_sm makes the gateway redeliver it forever.
    session.send(pdu.response({ message_id: '' }));
  });
  session.on('unbind', (pdu: smpp.PDU) => {
    onUnbind();
    session.send(pdu.response());
    session.close();
  });
  session.on('unknown', (pdu: smpp.PDU) => session.send(pdu.response()));
}

/**
 * Ends a session: a bound one with an unbind first, so the gateway frees the bind slot now rather
 * than at its idle timeout. Resolves once the socket is closed.
 */
export async function endSession(session: smpp.Session, bound: boolean): Promise<void> {
  if (bound) {
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        session.socket.off('close', done);
        resolve();
      };
      const timer = setTimeout(done, CLOSE_GRACE_MS);
      // The gateway may already be gone; its unbind_resp will then never come.
      session.socket.once('close', done);
      if (!session.unbind({}, done)) done();
    });
  }
  await new Promise<void>((resolve) => {
    if (session.socket.destroyed) return resolve();
    const timer = setTimeout(() => session.destroy(), CLOSE_GRACE_MS);
    session.socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    session.close();
  });
}
