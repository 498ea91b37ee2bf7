import { AppError } from '../errors/app-error.js';

/** A fee with more decimals than the deployment's currency has (2.505 USD). */
export const feeTooPrecise = (fee: number | string, currency: string, digits: number) =>
  new AppError({
    code: 'TERMS_FEE_INVALID',
    kind: 'invalid',
    message: `feePer1000Calls ${JSON.stringify(fee)} has more decimals than ${currency} allows (${digits})`,
    details: { fee, currency, digits },
    location: { field: 'feePer1000Calls' },
  });
