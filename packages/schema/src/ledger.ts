import { z } from 'zod';

// Dataset terms and the ledger that pays data back (docs/ledger.md): what a dataset's owner asks per
// 1,000 policy calls, and what the calls of policies trained on it earned.

export const edgeExportTerms = ['deny', 'allow'] as const;
export type EdgeExportTerm = (typeof edgeExportTerms)[number];

/** A fee as a decimal: a number (`2.5`) or a string (`"2.50"`), never negative; the currency's digits are checked by the service. */
const feeSchema = z.union([
  z.number().finite().nonnegative().max(1e12),
  z.string().regex(/^\d{1,12}(\.\d{1,12})?$/, 'a decimal number like "2.50"'),
]);

/** `PUT /v1/datasets/:id/terms` body: the terms policies trained on the dataset are used under, from the minute they are set in. */
export const datasetTermsRequestSchema = z.strictObject({
  /** Whether policies trained on this dataset may be exported to run on a robot's own computer. */
  edgeExport: z.enum(edgeExportTerms),
  /** Per 1,000 calls of a policy trained on the dataset, in the deployment's currency (`KURA_CURRENCY`). */
  feePer1000Calls: feeSchema,
  /** Free text: the license or conditions in words. */
  text: z.string().max(20_000).optional(),
});
export type DatasetTermsRequest = z.infer<typeof datasetTermsRequestSchema>;

export interface DatasetTermsView {
  id: string;
  datasetId: string;
  edgeExport: EdgeExportTerm;
  /** The fee as a decimal in `currency` ("2.50"), and in minor units (250). */
  feePer1000Calls: string;
  feeMinorPer1000: number;
  currency: string;
  text: string | null;
  /** The first minute of use these terms price (the minute they were set in). */
  effectiveFrom: string;
  setAt: string;
}

/** `GET /v1/datasets/:id/terms`: the terms in effect now (null: never set, so no fee and no edge export) and every earlier set, newest first. */
export interface DatasetTermsHistoryView {
  datasetId: string;
  current: DatasetTermsView | null;
  history: DatasetTermsView[];
}

/** `GET /v1/datasets/:id/earnings` and `GET /v1/ledger` query: whole minutes from `from` (inclusive) to `to` (exclusive); this month so far by default. */
export const ledgerQuerySchema = z
  .strictObject({
    from: z.coerce.date().optional(),
    to: z.coerce.date().optional(),
  })
  .refine((query) => !query.from || !query.to || query.from <= query.to, { message: 'from is after to', path: ['from'] });
export type LedgerQuery = z.infer<typeof ledgerQuerySchema>;

/**
 * One policy's calls under one set of a dataset's terms, and what they earned the dataset: the
 * deployment's own calls (act, session steps), or one edge export's reported calls (`exportId`),
 * priced by the terms its license recorded.
 */
export interface EarningsLine {
  datasetId: string;
  policyId: string;
  policyName: string | null;
  policyVersion: number | null;
  /** The dataset's share of the policy's lineage: its weight over the sum of the run's source weights. */
  share: number;
  /** The terms that priced these calls; null for calls before the dataset had terms (no fee). */
  termsId: string | null;
  feeMinorPer1000: number;
  /** The terms' currency (the deployment's; terms set under another KURA_CURRENCY keep theirs and are left out of totals). */
  currency: string;
  calls: { act: number; sessionSteps: number; edge: number; total: number };
  /** The edge export whose reported calls these are; null for calls made on the deployment. */
  exportId: string | null;
  /** calls × fee × share / 1,000, rounded half to even to a whole minor unit. */
  amountMinor: number;
}

export interface EarningsTotals {
  calls: number;
  amountMinor: number;
  /** `amountMinor` as a decimal in the currency ("12.34"). */
  amount: string;
}

/** `GET /v1/datasets/:id/earnings`: the dataset's lines and total over the range. */
export interface DatasetEarningsView {
  datasetId: string;
  currency: string;
  from: string;
  to: string;
  lines: EarningsLine[];
  totals: EarningsTotals;
}

/** `GET /v1/ledger` (admin): every dataset's earnings over the range. */
export interface LedgerView {
  currency: string;
  from: string;
  to: string;
  datasets: Array<{ datasetId: string; datasetName: string; ownerKeyId: string } & EarningsTotals>;
  lines: EarningsLine[];
  totals: EarningsTotals;
}
