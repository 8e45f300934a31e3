// One submit_sm on a bound session and the ways it can end: accepted (with the gateway's message
// id), refused (with the ESME status), not answered in time, or the connection dropping under it.

import type smpp from 'smpp';
import type { MemfaError } from '../protocol/errors.js';
import { deliveryFailed, describeError } from './common.js';
import { describeStatus, smppStatusName } from './smpp-pdu.js';

/** Registers a listener for the session dropping; returns the function that removes it. */
export type OnLost = (listener: (reason: string) => void) => () => void;

/** Resolves with the gateway's message id ('' when it gave none); rejects with DELIVERY_FAILED. */
export function submitSm(
  session: smpp.Session,
  params: smpp.PduParams,
  timeoutMs: number,
  onLost: OnLost,
  secrets: ReadonlyArray<string | undefined>,
): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    let stopWatching = (): void => {};
    const finish = (err: MemfaError | null, messageId = ''): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      stopWatching();
      if (err === null) resolve(messageId);
      else reject(err);
    };
    stopWatching = onLost((reason) => {
      finish(deliveryFailed('sms', `SMPP connection lost before submit_sm_resp: ${reason}`, { transport: 'smpp' }));
    });

    let sent: boolean;
    try {
      sent = session.submit_sm(params, onResponse);
    } catch (err) {
      // The library encodes while building the PDU; a value it cannot encode throws here.
      finish(deliveryFailed('sms', `SMPP submit_sm could not be built: ${describeError(err, secrets)}`, { transport: 'smpp' }, err));
      return;
    }
    if (!sent) {
      finish(deliveryFailed('sms', 'SMPP connection is not writable', { transport: 'smpp' }));
      return;
    }
    timer = setTimeout(() => {
      finish(deliveryFailed('sms', `SMPP gateway did not answer submit_sm within ${timeoutMs} ms`, { transport: 'smpp', timeoutMs }));
    }, timeoutMs);

    function onResponse(pdu: smpp.PDU): void {
      if (pdu.command_status === 0) {
        finish(null, typeof pdu.message_id === 'string' ? pdu.message_id : '');
        return;
      }
      const via = pdu.command === 'generic_nack' ? 'generic_nack' : 'submit_sm';
      finish(
        deliveryFailed('sms', `SMPP ${via} refused: ${describeStatus(pdu.command_status)}`, {
          transport: 'smpp',
          smppStatus: pdu.command_status,
          smppError: smppStatusName(pdu.command_status),
        }),
      );
    }
  });
}
