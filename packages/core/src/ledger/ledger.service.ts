import { Inject, Injectable } from '@nestjs/common';
import type {
  DatasetEarningsView,
  DatasetTermsHistoryView,
  DatasetTermsRequest,
  DatasetTermsView,
  EarningsLine,
  EarningsTotals,
  LedgerQuery,
  LedgerView,
} from '@kura/schema';
import { requireRole, type Principal } from '../auth/principal.js';
import { newId } from '../common/ids.js';
import { currencyDigits, type KuraConfig } from '../config/config.js';
import { KURA_CONFIG } from '../database/database.tokens.js';
import { DatasetsService } from '../datasets/datasets.service.js';
import { feeTooPrecise } from './ledger.errors.js';
import { LedgerRepository, type LineageRecord } from './ledger.repository.js';
import { amountMinor, feeToMinor, minorToDecimal, shareNumber, shares, type Fraction } from './money.js';
import { TermsRepository, type TermsRecord } from './terms.repository.js';

const MINUTE = 60_000;

/**
 * Dataset terms and the ledger (docs/ledger.md): a dataset's owner sets a fee per 1,000 policy
 * calls; every metered call of a policy trained on the platform is attributed to the datasets of its
 * run, each by its share of the run's source weights, and priced by that dataset's terms in effect
 * in the minute of the call.
 */
@Injectable()
export class LedgerService {
  constructor(
    private readonly terms: TermsRepository,
    private readonly ledger: LedgerRepository,
    private readonly datasets: DatasetsService,
    @Inject(KURA_CONFIG) private readonly config: KuraConfig,
  ) {}

  /**
   * Sets a dataset's terms (owner or admin). They price the minute they are set in and every later
   * one, until superseded: usage is counted per minute, so a minute has exactly one price.
   */
  async setTerms(principal: Principal, datasetId: string, request: DatasetTermsRequest): Promise<DatasetTermsView> {
    const dataset = await this.datasets.findOwned(principal, datasetId, 'set its terms');
    const { currency, digits } = this.config.ledger;
    const fee = feeToMinor(request.feePer1000Calls, digits);
    if (fee === undefined) throw feeTooPrecise(request.feePer1000Calls, currency, digits);
    const record = await this.terms.create({
      id: newId('trm'),
      datasetId: dataset.id,
      edgeExport: request.edgeExport,
      feeMinorPer1000: fee,
      currency,
      text: request.text ?? null,
      effectiveFrom: new Date(Math.floor(Date.now() / MINUTE) * MINUTE),
      setByKeyId: principal.kind === 'key' ? principal.keyId : '',
    });
    return this.termsView(record);
  }

  /** A dataset's terms, for anyone who may see the dataset: buyers of its policies' calls read them here. */
  async termsOf(principal: Principal, datasetId: string): Promise<DatasetTermsHistoryView> {
    const dataset = await this.datasets.findVisible(principal, datasetId);
    const history = await this.terms.history(dataset.id);
    const now = new Date();
    const current = history.find((record) => record.effectiveFrom <= now) ?? null;
    return { datasetId: dataset.id, current: current && this.termsView(current), history: history.map((record) => this.termsView(record)) };
  }

  /** What the dataset's data earned over the range (owner or admin). */
  async earnings(principal: Principal, datasetId: string, query: LedgerQuery): Promise<DatasetEarningsView> {
    const dataset = await this.datasets.findOwned(principal, datasetId, 'read its earnings');
    const range = rangeOf(query);
    const lines = await this.datasetLines(dataset.id, await this.ledger.lineage(dataset.id), range);
    return { datasetId: dataset.id, currency: this.config.ledger.currency, ...rangeView(range), lines, totals: this.totals(lines) };
  }

  /** Every dataset's earnings over the range (admins). */
  async ledgerOf(principal: Principal, query: LedgerQuery): Promise<LedgerView> {
    requireRole(principal, [], 'read the ledger');
    const range = rangeOf(query);
    const lineage = await this.ledger.lineage(undefined);
    const datasetIds = [...new Set(lineage.flatMap((policy) => policy.sources.map((source) => source.datasetId)))].sort();
    const lines: EarningsLine[] = [];
    for (const datasetId of datasetIds)
      lines.push(
        ...(await this.datasetLines(
          datasetId,
          lineage.filter((policy) => policy.sources.some((source) => source.datasetId === datasetId)),
          range,
        )),
      );
    const known = await this.ledger.datasets(datasetIds);
    const datasets = datasetIds
      .filter((datasetId) => known.has(datasetId))
      .map((datasetId) => ({
        datasetId,
        datasetName: known.get(datasetId)!.name,
        ownerKeyId: known.get(datasetId)!.ownerKeyId,
        ...this.totals(lines.filter((line) => line.datasetId === datasetId)),
      }));
    return { currency: this.config.ledger.currency, ...rangeView(range), datasets, lines, totals: this.totals(lines) };
  }

  /** One line per policy and terms: the calls in the range priced minute by minute, the dataset's share of them. */
  private async datasetLines(datasetId: string, lineage: LineageRecord[], range: Range): Promise<EarningsLine[]> {
    const shareOf = new Map<string, Fraction>();
    for (const policy of lineage) shareOf.set(policy.policyId, datasetShare(policy.sources, datasetId));
    const byId = new Map(lineage.map((policy) => [policy.policyId, policy]));
    const rows = await this.ledger.usageByTerms({ datasetId, policyIds: [...shareOf.keys()], ...range });
    const lines = rows.map((row): EarningsLine => {
      const share = shareOf.get(row.policyId)!;
      const policy = byId.get(row.policyId)!;
      const total = row.actCalls + row.sessionSteps;
      return {
        datasetId,
        policyId: row.policyId,
        policyName: policy.policyName,
        policyVersion: policy.policyVersion,
        share: shareNumber(share),
        termsId: row.termsId,
        feeMinorPer1000: Number(row.feeMinorPer1000),
        currency: row.currency ?? this.config.ledger.currency,
        calls: { act: Number(row.actCalls), sessionSteps: Number(row.sessionSteps), edge: 0, total: Number(total) },
        exportId: null,
        amountMinor: Number(amountMinor(total, row.feeMinorPer1000, share)),
      };
    });
    return [...lines, ...(await this.edgeLines(datasetId, range))];
  }

  /**
   * One line per edge export whose devices reported calls in the range: priced by the terms its
   * license recorded at export (a later change of terms binds later exports only), shared by its lineage.
   */
  private async edgeLines(datasetId: string, range: Range): Promise<EarningsLine[]> {
    const rows = await this.ledger.edgeUsage({ datasetId, ...range });
    return rows.flatMap((row) => {
      const { license } = row;
      const terms = license.terms.find((item) => item.datasetId === datasetId);
      if (!terms) return [];
      const share = datasetShare(license.lineage, datasetId);
      const fee = BigInt(terms.feeMinorPer1000);
      return [
        {
          datasetId,
          policyId: row.policyId,
          policyName: license.policy.name,
          policyVersion: license.policy.version,
          share: shareNumber(share),
          termsId: terms.termsId,
          feeMinorPer1000: terms.feeMinorPer1000,
          currency: terms.currency,
          calls: { act: 0, sessionSteps: 0, edge: Number(row.calls), total: Number(row.calls) },
          exportId: row.exportId,
          amountMinor: Number(amountMinor(row.calls, fee, share)),
        },
      ];
    });
  }

  private totals(lines: EarningsLine[]): EarningsTotals {
    const counted = lines.filter((line) => line.currency === this.config.ledger.currency);
    const minor = counted.reduce((sum, line) => sum + BigInt(line.amountMinor), 0n);
    return {
      calls: lines.reduce((sum, line) => sum + line.calls.total, 0),
      amountMinor: Number(minor),
      amount: minorToDecimal(minor, this.config.ledger.digits),
    };
  }

  private termsView(record: TermsRecord): DatasetTermsView {
    return {
      id: record.id,
      datasetId: record.datasetId,
      edgeExport: record.edgeExport,
      feePer1000Calls: minorToDecimal(record.feeMinorPer1000, currencyDigits(record.currency)),
      feeMinorPer1000: Number(record.feeMinorPer1000),
      currency: record.currency,
      text: record.text,
      effectiveFrom: record.effectiveFrom.toISOString(),
      setAt: record.createdAt.toISOString(),
    };
  }
}

/** A dataset's share of a run's sources: a dataset named by several sources (two versions) has their weights together. */
function datasetShare(sources: ReadonlyArray<{ datasetId: string; weight: number }>, datasetId: string): Fraction {
  const weights = new Map<string, number>();
  for (const source of sources) weights.set(source.datasetId, (weights.get(source.datasetId) ?? 0) + source.weight);
  const ids = [...weights.keys()];
  return shares(ids.map((id) => weights.get(id)!))[ids.indexOf(datasetId)]!;
}

interface Range {
  from: Date;
  to: Date;
}

/** Whole minutes: `from` rounded down, `to` rounded up; this month so far by default. */
function rangeOf(query: LedgerQuery): Range {
  const now = new Date();
  const from = query.from ?? new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
  const to = query.to ?? now;
  return { from: new Date(Math.floor(from.getTime() / MINUTE) * MINUTE), to: new Date(Math.ceil(to.getTime() / MINUTE) * MINUTE) };
}

const rangeView = (range: Range) => ({ from: range.from.toISOString(), to: range.to.toISOString() });
