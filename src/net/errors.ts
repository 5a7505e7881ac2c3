import { TfcError, type TfcErrorOptions } from '../errors/index.js';

/**
 * The networking error kinds (documented in docs/errors.md and
 * docs/networking.md). Codes are stable; messages say what to do.
 */

/** Every subnet of the IPAM range is leased: no more networked VMs fit. */
export class NetworkExhaustedError extends TfcError {
  static readonly code = 'NETWORK_EXHAUSTED';
  constructor(message: string, options: TfcErrorOptions = {}) {
    super(NetworkExhaustedError.code, message, options);
  }
}

/** A step creating a VM's network failed; everything it created was removed again. */
export class NetworkSetupFailedError extends TfcError {
  static readonly code = 'NETWORK_SETUP_FAILED';
  constructor(message: string, options: TfcErrorOptions = {}) {
    super(NetworkSetupFailedError.code, message, options);
  }
}

/** The host cannot do VM networking at all: not root / no CAP_NET_ADMIN, or `ip`/`nft` missing. */
export class NetworkUnavailableError extends TfcError {
  static readonly code = 'NETWORK_UNAVAILABLE';
  constructor(message: string, options: TfcErrorOptions = {}) {
    super(NetworkUnavailableError.code, message, options);
  }
}
