import { useEffect, useState } from 'preact/hooks';
import { ApiError, storedKey, storeKey } from './api';
import { onNavigate, parseRoute, type Route } from './router';
import { ErrorPage } from './ui';
import { DatasetsPage } from './pages/datasets';
import { DatasetPage } from './pages/dataset';
import { EpisodePage } from './pages/episode';
import { LeaderboardPage } from './pages/leaderboard';
import { PoliciesPage, PolicyPage } from './pages/policies';
import { TrainingPage, TrainingsPage } from './pages/trainings';

export function App() {
  const [route, setRoute] = useState<Route>(() => parseRoute(location.pathname));
  // Changing the key reloads the page's data: what a caller may see depends on it.
  const [key, setKey] = useState<string | null>(() => storedKey());
  useEffect(() => onNavigate(() => setRoute(parseRoute(location.pathname))), []);
  const page = renderRoute(route);
  return (
    <>
      <header class="top">
        <a class="brand" href="/datasets">
          Kura <BrandKanji />
        </a>
        <nav>
          <a href="/datasets">Datasets</a>
          <a href="/policies">Policies</a>
          <a href="/trainings">Trainings</a>
          <a href="/docs" target="_blank" rel="noreferrer">
            API docs
          </a>
        </nav>
        <KeyField
          value={key}
          onChange={(next) => {
            storeKey(next);
            setKey(next);
          }}
        />
      </header>
      <main key={`${key ?? ''}|${JSON.stringify(route)}`}>{page}</main>
    </>
  );
}

function renderRoute(route: Route) {
  switch (route.page) {
    case 'datasets':
      return <DatasetsPage />;
    case 'dataset':
      return <DatasetPage datasetId={route.datasetId} />;
    case 'episode':
      return <EpisodePage datasetId={route.datasetId} episodeIndex={route.episodeIndex} />;
    case 'leaderboard':
      return <LeaderboardPage datasetId={route.datasetId} />;
    case 'policies':
      return <PoliciesPage />;
    case 'policy':
      return <PolicyPage policyId={route.policyId} />;
    case 'trainings':
      return <TrainingsPage />;
    case 'training':
      return <TrainingPage trainingId={route.trainingId} />;
    case 'unknown':
      return <ErrorPage error={new ApiError(404, 'PAGE_NOT_FOUND', `the viewer has no page at ${route.path}`)} />;
  }
}

/**
 * 蔵 ("storehouse") drawn as strokes, so that it shows on machines without a CJK font (where the
 * character itself would be an empty box). Screen readers get the character.
 */
function BrandKanji() {
  return (
    <svg
      class="brand-kanji"
      viewBox="0 0 100 100"
      role="img"
      aria-label="蔵"
      fill="none"
      stroke="currentColor"
      stroke-width="6"
      stroke-linecap="round"
      stroke-linejoin="round"
    >
      <title>蔵</title>
      {/* 艹, 戈's dot, the long bar and left sweep of 戊, a short bar, 臣, then 戈's hook and slash. */}
      <path d="M10 12H90M32 3V23M68 3V23" />
      <path d="M77 22L82 27" />
      <path d="M14 37H88" />
      <path d="M24 37V62Q23 82 10 95" />
      <path d="M35 47H53" />
      <path d="M35 57H54M35 57V91H57M35 74H54M44 57V91" />
      <path d="M58 29Q62 68 90 92V80" />
      <path d="M86 56L66 84" />
    </svg>
  );
}

/** The API key, typed once and kept in this browser (localStorage); public data needs none. */
function KeyField(props: { value: string | null; onChange: (key: string | null) => void }) {
  const [draft, setDraft] = useState('');
  if (props.value) {
    const masked = props.value.length > 12 ? `${props.value.slice(0, 8)}…${props.value.slice(-4)}` : '••••';
    return (
      <div class="key-field">
        <span class="key-set" title="sent as Authorization: Bearer">
          key <code>{masked}</code>
        </span>
        <button type="button" data-testid="key-forget" onClick={() => props.onChange(null)}>
          Forget key
        </button>
      </div>
    );
  }
  return (
    <form
      class="key-field"
      onSubmit={(event) => {
        event.preventDefault();
        const key = draft.trim();
        if (key) props.onChange(key);
        setDraft('');
      }}
    >
      <input
        type="password"
        name="apiKey"
        data-testid="key-input"
        placeholder="API key (optional)"
        autocomplete="off"
        value={draft}
        onInput={(event) => setDraft(event.currentTarget.value)}
      />
      <button type="submit" data-testid="key-save">
        Use key
      </button>
    </form>
  );
}
