// What goes into and comes out of SMPP PDUs: status names, text encodings and the submit_sm
// parameters. No sockets here; smpp-link.ts owns the session, smpp-submit.ts the exchange.

import smpp from 'smpp';
import { isGsm7 } from './template.js';
import type { SmppConfig, SmppDataCoding } from './types.js';

/** SMPP 3.4: the library says 5.0 (0x50) by default, which some 3.4 gateways refuse to bind. */
export const INTERFACE_VERSION = 0x34;
/** short_message holds at most 254 octets; a longer text goes in the message_payload TLV. */
const SHORT_MESSAGE_MAX = 254;

const STATUS_NAMES = new Map<number, string>(Object.entries(smpp.errors).map(([name, value]) => [value, name]));

/** `ESME_RTHROTTLED`, or `ESME_0x0000042A` for a vendor-specific status. */
export function smppStatusName(status: number): string {
  return STATUS_NAMES.get(status) ?? `ESME_0x${status.toString(16).toUpperCase().padStart(8, '0')}`;
}

/** `ESME_RTHROTTLED (0x58)`: the name for people, the number for the gateway's documentation. */
export function describeStatus(status: number): string {
  return `${smppStatusName(status)} (0x${status.toString(16).toUpperCase().padStart(2, '0')})`;
}

export interface EncodedSms {
  dataCoding: SmppDataCoding;
  bytes: Buffer;
}

/**
 * Encodes a text for the configured data_coding, switching to UCS-2 when that alphabet cannot
 * carry it: a mailbox with a character outside GSM 03.38 would otherwise arrive with a space in
 * place of it. Encoding is done here, not by the library, because smpp@0.5.1 sends data_coding 1
 * (IA5/ASCII) in the GSM alphabet, which turns the '@' of every mailbox into a NUL.
 */
export function encodeSms(text: string, dataCoding: SmppDataCoding): EncodedSms {
  if (dataCoding === 0 && isGsm7(text)) return { dataCoding: 0, bytes: smpp.encodings.ASCII.encode(text) };
  if (dataCoding === 1 && /^[\x20-\x7e\r\n]*$/.test(text)) return { dataCoding: 1, bytes: Buffer.from(text, 'ascii') };
  if (dataCoding === 3 && /^[\u0000-\u00ff]*$/.test(text)) return { dataCoding: 3, bytes: Buffer.from(text, 'latin1') };
  return { dataCoding: 8, bytes: Buffer.from(text, 'utf16le').swap16() };
}

/** The submit_sm for one message to an E.164 number (`+` and digits). */
export function submitSmParams(cfg: SmppConfig, e164: string, encoded: EncodedSms): smpp.PduParams {
  const params: smpp.PduParams = {
    source_addr_ton: cfg.sourceTon,
    source_addr_npi: cfg.sourceNpi,
    source_addr: cfg.sourceAddr,
    dest_addr_ton: cfg.destTon,
    dest_addr_npi: cfg.destNpi,
    // SMPP addresses are digits only; the '+' is what TON international says.
    destination_addr: e164.slice(1),
    data_coding: encoded.dataCoding,
    registered_delivery: 0,
  };
  if (encoded.bytes.length <= SHORT_MESSAGE_MAX) params.short_message = encoded.bytes;
  else params.message_payload = encoded.bytes;
  return params;
}
