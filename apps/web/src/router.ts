// Client-side routes (the api answers each of these paths with index.html).

export type Route =
  | { page: 'datasets' }
  | { page: 'dataset'; datasetId: string }
  | { page: 'episode'; datasetId: string; episodeIndex: number }
  | { page: 'leaderboard'; datasetId: string }
  | { page: 'policies' }
  | { page: 'policy'; policyId: string }
  | { page: 'trainings' }
  | { page: 'training'; trainingId: string }
  | { page: 'unknown'; path: string };

export function parseRoute(path: string): Route {
  const parts = path
    .split('/')
    .filter((part) => part !== '')
    .map(decodeURIComponent);
  const [first, id, sub, n] = parts;
  if (parts.length === 0) return { page: 'datasets' };
  if (first === 'datasets') {
    if (parts.length === 1) return { page: 'datasets' };
    if (id !== undefined && parts.length === 2) return { page: 'dataset', datasetId: id };
    if (id !== undefined && sub === 'leaderboard' && parts.length === 3) return { page: 'leaderboard', datasetId: id };
    if (id !== undefined && sub === 'episodes' && n !== undefined && /^\d+$/.test(n) && parts.length === 4) {
      return { page: 'episode', datasetId: id, episodeIndex: Number(n) };
    }
  }
  if (first === 'policies') {
    if (parts.length === 1) return { page: 'policies' };
    if (id !== undefined && parts.length === 2) return { page: 'policy', policyId: id };
  }
  if (first === 'trainings') {
    if (parts.length === 1) return { page: 'trainings' };
    if (id !== undefined && parts.length === 2) return { page: 'training', trainingId: id };
  }
  return { page: 'unknown', path };
}

const listeners = new Set<() => void>();

export function onNavigate(listener: () => void): () => void {
  listeners.add(listener);
  window.addEventListener('popstate', listener);
  return () => {
    listeners.delete(listener);
    window.removeEventListener('popstate', listener);
  };
}

export function navigate(href: string): void {
  if (href === location.pathname + location.search) return;
  history.pushState(null, '', href);
  window.scrollTo(0, 0);
  for (const listener of listeners) listener();
}

/** Same-origin link clicks become client-side navigations (modifier keys still open new tabs). */
export function interceptLinks(root: HTMLElement): void {
  root.addEventListener('click', (event) => {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const target = event.target instanceof Element ? event.target.closest('a') : null;
    if (!target || target.target || target.hasAttribute('download') || target.origin !== location.origin) return;
    if (!/^\/(datasets|policies|trainings)(\/|$)|^\/$/.test(target.pathname)) return;
    event.preventDefault();
    navigate(target.pathname + target.search);
  });
}
