import { useEffect, useRef, useState } from 'preact/hooks';
import { api, enc, type Dataset } from '../api';
import { ImageFrames, VideoFrames } from '../episode/frames';
import { loadEpisode, type EpisodeData, type LoadProgress } from '../episode/load';
import { Player } from '../episode/player';
import { FeaturePlot } from '../episode/plots';
import { asApiError, Badge, ErrorPage, formatBytes, formatNumber, Loading, useLoad, type Loaded } from '../ui';

/** One episode: a plot per vector feature, its cameras, and a scrubber that moves them all. */
export function EpisodePage(props: { datasetId: string; episodeIndex: number }) {
  const loaded = useLoad(() => api<Dataset>(`/v1/datasets/${enc(props.datasetId)}`), [props.datasetId]);
  return (
    <Loading loaded={loaded} what="the dataset">
      {(dataset) => <EpisodeLoader dataset={dataset} episodeIndex={props.episodeIndex} />}
    </Loading>
  );
}

function EpisodeLoader(props: { dataset: Dataset; episodeIndex: number }) {
  const { dataset, episodeIndex } = props;
  const [loaded, setLoaded] = useState<Loaded<EpisodeData>>({ state: 'loading' });
  const [progress, setProgress] = useState<LoadProgress | null>(null);
  useEffect(() => {
    const abort = new AbortController();
    loadEpisode({ dataset, episodeIndex, onProgress: setProgress, signal: abort.signal }).then(
      (value) => setLoaded({ state: 'ok', value }),
      (error: unknown) => {
        if (!abort.signal.aborted) setLoaded({ state: 'error', error: asApiError(error) });
      },
    );
    return () => abort.abort();
  }, [dataset, episodeIndex]);

  const crumbs = (
    <p class="crumbs">
      <a href="/datasets">Datasets</a> / <a href={`/datasets/${enc(dataset.id)}`}>{dataset.name}</a> /
    </p>
  );
  if (loaded.state === 'error') {
    return (
      <>
        {crumbs}
        <ErrorPage error={loaded.error} title={`Episode ${episodeIndex} cannot be shown`} />
      </>
    );
  }
  if (loaded.state === 'loading') {
    return (
      <>
        {crumbs}
        <h1>Episode {episodeIndex}</h1>
        <p class="loading" data-testid="episode-progress">
          {progress
            ? `Downloading steps: ${formatNumber(progress.steps)} of ${formatNumber(progress.expected)} (${formatBytes(progress.bytes)})…`
            : 'Preparing the episode…'}
        </p>
      </>
    );
  }
  return (
    <>
      {crumbs}
      <EpisodeViewer dataset={dataset} data={loaded.value} />
    </>
  );
}

function EpisodeViewer({ dataset, data }: { dataset: Dataset; data: EpisodeData }) {
  const root = useRef<HTMLDivElement>(null);
  const [playing, setPlaying] = useState(false);
  const [videoError, setVideoError] = useState<string | null>(null);
  const playerRef = useRef<Player | null>(null);
  const last = data.length - 1;

  // Everything that follows the step is wired here once, outside Preact's rendering.
  useEffect(() => {
    const element = root.current;
    if (!element) return;
    const player = new Player(data.timestamps);
    playerRef.current = player;
    const times = Float64Array.from({ length: data.length }, (_, step) => player.timeOf(step));
    const plots = data.vectors.map(
      (track, index) => new FeaturePlot(element.querySelector<HTMLElement>(`[data-plot="${index}"]`)!, track, times, player),
    );
    const images = data.images.map(
      (track, index) => new ImageFrames(element.querySelector<HTMLCanvasElement>(`canvas[data-camera="${index}"]`)!, track, player),
    );
    const videos = data.videos.map(
      (track, index) => new VideoFrames(element.querySelector<HTMLVideoElement>(`video[data-video="${index}"]`)!, track, player),
    );
    const abort = new AbortController();
    for (const video of videos) {
      video.load(abort.signal).catch((error: unknown) => {
        if (!abort.signal.aborted) setVideoError(error instanceof Error ? error.message : String(error));
      });
    }
    const scrubber = element.querySelector<HTMLInputElement>('input[data-testid="scrubber"]')!;
    const label = element.querySelector<HTMLElement>('[data-testid="step-label"]')!;
    const show = (step: number) => {
      scrubber.value = String(step);
      label.textContent = `step ${data.stepIndices[step] ?? step} · ${step + 1} of ${data.length} · ${times[step]!.toFixed(2)} s`;
      for (const plot of plots) plot.show(step);
      for (const image of images) image.show(step);
      for (const video of videos) video.show(step);
    };
    const unsubscribe = [
      player.onStep(show),
      player.onPlay((isPlaying) => {
        setPlaying(isPlaying);
        for (const video of videos) video.setPlaying(isPlaying);
      }),
    ];
    const onInput = () => player.seek(Number(scrubber.value));
    scrubber.addEventListener('input', onInput);
    const onKey = (event: KeyboardEvent) => {
      if (event.target instanceof HTMLInputElement && event.target !== scrubber) return;
      if (
        event.target instanceof HTMLTextAreaElement ||
        event.target instanceof HTMLSelectElement ||
        event.target instanceof HTMLButtonElement
      )
        return;
      if (event.key === 'ArrowRight' || event.key === 'ArrowLeft') {
        if (event.target === scrubber) return; // the range input moves itself
        event.preventDefault();
        player.seek(player.step + (event.key === 'ArrowRight' ? 1 : -1) * (event.shiftKey ? 10 : 1));
      } else if (event.key === ' ') {
        event.preventDefault();
        player.toggle();
      }
    };
    window.addEventListener('keydown', onKey);
    show(0);
    element.dataset.ready = 'true';
    return () => {
      abort.abort();
      window.removeEventListener('keydown', onKey);
      scrubber.removeEventListener('input', onInput);
      for (const off of unsubscribe) off();
      player.dispose();
      for (const plot of plots) plot.dispose();
      for (const image of images) image.dispose();
      for (const video of videos) video.dispose();
    };
  }, [data]);

  const { episode } = data;
  const cameras = data.images.length + data.videos.length;
  return (
    <div class="episode" ref={root} data-testid="episode-viewer">
      <h1>Episode {episode.episodeIndex}</h1>
      <p class="task" data-testid="task">
        {data.task ? <>“{data.task}”</> : <span class="sub">no task text</span>}
      </p>
      <p class="facts">
        {formatNumber(data.length)} steps · {(data.timestamps[last]! - data.timestamps[0]!).toFixed(2)} s · success{' '}
        {episode.success === null ? '—' : episode.success ? 'yes' : 'no'} · version {episode.version} · source episode{' '}
        <code data-testid="source-episode">{episode.sourceEpisode}</code>
        {episode.heldOut ? (
          <>
            {' '}
            · <Badge kind="held-out">held out</Badge>
          </>
        ) : null}{' '}
        · rows from slice <code>{data.sliceId}</code> (
        <a href={`/v1/slices/${enc(data.sliceId)}/data?format=ndjson`} download>
          NDJSON
        </a>
        ) · <a href={`/datasets/${enc(dataset.id)}`}>dataset</a>
      </p>
      <div class="player-bar">
        <button type="button" data-testid="play" onClick={() => playerRef.current?.toggle()} disabled={data.length < 2}>
          {playing ? '❚❚ Pause' : '▶ Play'}
        </button>
        <input type="range" min="0" max={String(Math.max(0, last))} step="1" defaultValue="0" data-testid="scrubber" aria-label="step" />
        <span class="step-label" data-testid="step-label" />
      </div>
      {cameras > 0 ? (
        <section class="cameras">
          {data.images.map((track, index) => (
            <figure key={track.name} class="camera">
              <canvas data-camera={String(index)} data-testid="camera-frame" data-name={track.name} />
              <figcaption>{track.name}</figcaption>
            </figure>
          ))}
          {data.videos.map((track, index) => (
            <figure key={track.name} class="camera">
              <video data-video={String(index)} data-testid="camera-video" data-name={track.name} playsInline muted />
              <figcaption>
                {track.name} <span class="sub">(mp4)</span>
              </figcaption>
            </figure>
          ))}
          {videoError ? <p class="inline-error">{videoError}</p> : null}
        </section>
      ) : null}
      <section class="plots">
        {data.vectors.length === 0 ? <p class="empty">This episode has no vector features to plot.</p> : null}
        {data.vectors.map((track, index) => (
          <div key={track.name} class="plot">
            <h3>
              <code>{track.name}</code> <span class="sub">({track.components.length} dimensions)</span>
            </h3>
            <div data-plot={String(index)} data-testid="plot" data-name={track.name} />
          </div>
        ))}
      </section>
    </div>
  );
}
