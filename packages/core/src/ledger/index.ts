import type { DomainProviders } from '../common/domain.js';
import { LedgerRepository } from './ledger.repository.js';
import { LedgerService } from './ledger.service.js';
import { TermsRepository } from './terms.repository.js';

export * from './ledger.errors.js';
export * from './ledger.service.js';

export const ledgerDomain: DomainProviders = {
  providers: [TermsRepository, LedgerRepository, LedgerService],
  exports: [LedgerService],
};
