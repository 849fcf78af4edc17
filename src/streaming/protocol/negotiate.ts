// Subprotocol negotiation for streaming upgrades (apimachinery's httpstream.Handshake): the
// client lists X-Stream-Protocol-Version values in its order of preference, and the first one
// the server also speaks wins. Node joins repeated header lines with ", ", so both repeated
// headers and comma lists are accepted.
import { InvalidArgumentError } from '../../errors.js';
import { HEADER_PROTOCOL_VERSION } from './constants.js';

/** An upgrade we refuse; httpStatus and the accepted list go into the HTTP error response. */
export class UpgradeRefusedError extends InvalidArgumentError {
  constructor(
    message: string,
    readonly httpStatus: 400 | 403,
    readonly acceptedProtocols: readonly string[] = [],
  ) {
    super(message);
  }
}

/** Splits raw header values ("a, b" or ["a", "b, c"]) into protocol names, order kept. */
export function parseProtocolList(raw: string | readonly string[] | undefined): string[] {
  if (raw === undefined) return [];
  const values = typeof raw === 'string' ? [raw] : raw;
  return values.flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v.length > 0);
}

/**
 * Chooses the subprotocol for an upgrade. Throws UpgradeRefusedError: 400 when the client named
 * none, 403 when none of the client's protocols is supported (the message lists both sides).
 */
export function negotiateSubprotocol(
  requested: string | readonly string[] | undefined,
  supported: readonly string[],
): string {
  if (supported.length === 0) throw new RangeError('negotiateSubprotocol needs at least one supported protocol');
  const client = parseProtocolList(requested);
  if (client.length === 0) {
    throw new UpgradeRefusedError(`unable to upgrade: ${HEADER_PROTOCOL_VERSION} is required`, 400, supported);
  }
  const chosen = client.find((p) => supported.includes(p));
  if (chosen === undefined) {
    throw new UpgradeRefusedError(
      `unable to upgrade: unable to negotiate protocol: client supports [${client.join(' ')}], ` +
        `server accepts [${supported.join(' ')}]`,
      403,
      supported,
    );
  }
  return chosen;
}
