import type { Provider, Type } from '@nestjs/common';

/**
 * What a domain folder hands CoreModule: its providers, the ones apps may inject, and its job
 * handlers (classes implementing JobHandler). A new service is one line in its own domain's list;
 * CoreModule only composes the lists.
 */
export interface DomainProviders {
  providers: Provider[];
  exports: Type[];
  jobHandlers?: Type[];
}
