import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { access, mkdir, readFile, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import jpeg from 'jpeg-js';
import { chromium, type Browser, type Page } from 'playwright-core';
import { episodeBucket } from '@kura/core';
import { bearer, eventually, startTestApp, type TestApp } from '../support/app.js';
import { tarGzOf } from '../support/archives.js';
import { publish } from '../support/datasets.js';
import { CAM_HIGH, G1_TASK, publishLerobot, unitreeEpisode29 } from '../support/lerobot-video.js';
import { deployPolicy } from '../support/policies.js';

// The web viewer (apps/web, built by `npm test`'s turbo build into apps/web/dist) driven in Chromium
// against a real Kura listening on a port: pages render, plots and camera frames really draw pixels.

const CHROMIUM = process.env.KURA_TEST_CHROMIUM ?? '/usr/bin/chromium';
const webDist = fileURLToPath(new URL('../../apps/web/dist/index.html', import.meta.url));
const outputDir = fileURLToPath(new URL('../../test-output/', import.meta.url));

// Source: test/fixtures/urdf/so101 (TheRobotStudio/SO-ARM100 @ fda892cba810, Apache-2.0; see SOURCES.md).
const so101Urdf = fileURLToPath(new URL('../../test/fixtures/urdf/so101/so101_new_calib.urdf', import.meta.url));

const LONG_EPISODE = 1200;
const STATE_NAMES = ['shoulder', 'elbow', 'wrist'];

/** 12 distinct 64×48 camera frames: a gradient with a bright square that moves with the frame number. */
const frames = Array.from({ length: 12 }, (_, frame) => {
  const width = 64;
  const height = 48;
  const data = Buffer.alloc(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const offset = (y * width + x) * 4;
      const inSquare = x >= frame * 4 && x < frame * 4 + 12 && y >= 18 && y < 30;
      data[offset] = inSquare ? 250 : x * 4;
      data[offset + 1] = inSquare ? 240 : y * 5;
      data[offset + 2] = inSquare ? 40 : 128;
      data[offset + 3] = 255;
    }
  }
  return Buffer.from(jpeg.encode({ width, height, data }, 90).data).toString('base64');
});

/** Kura NDJSON: state[0] = episode·1000 + step, a sine and a ramp; action [step, −episode] (what the test policy predicts). */
function episodesNdjson(lengths: number[]): string {
  const lines: string[] = [];
  lengths.forEach((length, episode) => {
    for (let step = 0; step < length; step++) {
      lines.push(
        JSON.stringify({
          episode,
          step,
          timestamp: step / 30,
          observation: {
            state: [episode * 1000 + step, Math.sin(step / 40), (step % 200) / 200],
            'images.front': { jpeg: frames[Math.floor(step / 10) % frames.length] },
          },
          action: [step, -episode],
          language: `stack the blocks ${episode}`,
        }),
      );
    }
  });
  return `${lines.join('\n')}\n`;
}

interface PixelStats {
  width: number;
  height: number;
  distinct: number;
  coloured: number;
  std: number;
  checksum: number;
}

/** Pixel statistics of a canvas, or of a video's current frame drawn on one. */
function pixelsOf(page: Page, selector: string): Promise<PixelStats> {
  return page.evaluate((target) => {
    const element = document.querySelector(target);
    let canvas: HTMLCanvasElement;
    if (element instanceof HTMLCanvasElement) canvas = element;
    else if (element instanceof HTMLVideoElement) {
      canvas = document.createElement('canvas');
      canvas.width = element.videoWidth;
      canvas.height = element.videoHeight;
      canvas.getContext('2d')!.drawImage(element, 0, 0);
    } else throw new Error(`no canvas or video at ${target}`);
    const { data } = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height);
    const colours = new Set<number>();
    let coloured = 0;
    let sum = 0;
    let squares = 0;
    let checksum = 0;
    for (let offset = 0; offset < data.length; offset += 4) {
      const [r, g, b, a] = [data[offset]!, data[offset + 1]!, data[offset + 2]!, data[offset + 3]!];
      colours.add((r << 24) | (g << 16) | (b << 8) | a);
      if (a > 0 && Math.max(r, g, b) - Math.min(r, g, b) > 60) coloured++;
      const luma = (r + g + b) / 3;
      sum += luma;
      squares += luma * luma;
      checksum = (checksum * 31 + r + g * 7 + b * 13) % 1_000_000_007;
    }
    const count = data.length / 4;
    const mean = sum / count;
    return {
      width: canvas.width,
      height: canvas.height,
      distinct: colours.size,
      coloured,
      std: Math.sqrt(Math.max(0, squares / count - mean * mean)),
      checksum,
    };
  }, selector);
}

/** Whether a number printed in fixed or exponent notation is `value` to the digits it shows. */
function printedAs(text: string, value: number): boolean {
  const match = /^-?\d+(?:\.(\d+))?(?:e([+-]\d+))?$/.exec(text.trim());
  if (!match) return false;
  const decimals = match[1]?.length ?? 0;
  const exponent = Number(match[2] ?? 0);
  return Math.abs(Number(text) - value) <= 0.5 * 10 ** (exponent - decimals) * (1 + 1e-9);
}

/** A row of a slice's NDJSON (the rows the viewer plots), parsed at the boundary. */
interface SliceRow {
  step?: number;
  timestamp: number;
  action?: unknown;
  observation?: Record<string, unknown>;
  features?: Record<string, unknown>;
  reward?: number;
}

/** A plotted feature's numbers in a row, named as the viewer names its plots. */
function featureNumbers(row: SliceRow, name: string): number[] {
  const member = (value: unknown, key: string): unknown =>
    value !== null && typeof value === 'object' ? Object.entries(value).find(([entry]) => entry === key)?.[1] : undefined;
  const value =
    name === 'action'
      ? row.action
      : name.startsWith('action.')
        ? member(row.action, name.slice('action.'.length))
        : name.startsWith('observation.')
          ? row.observation?.[name.slice('observation.'.length)]
          : name === 'reward'
            ? row.reward
            : row.features?.[name];
  return (Array.isArray(value) ? value : [value]).map(Number);
}

/** Ink pixels (dark against the light header) of an RGBA image, and how many separate 4-connected shapes they form. */
function inkShapes(image: { width: number; height: number; data: Uint8Array }): { ink: number; shapes: number[] } {
  const { width, height, data } = image;
  const isInk = new Uint8Array(width * height);
  let ink = 0;
  for (let pixel = 0; pixel < width * height; pixel++) {
    const luma = (data[pixel * 4]! + data[pixel * 4 + 1]! + data[pixel * 4 + 2]!) / 3;
    if (luma < 170) {
      isInk[pixel] = 1;
      ink++;
    }
  }
  const shapes: number[] = [];
  const seen = new Uint8Array(width * height);
  for (let start = 0; start < width * height; start++) {
    if (!isInk[start] || seen[start]) continue;
    let size = 0;
    const stack = [start];
    seen[start] = 1;
    while (stack.length > 0) {
      const pixel = stack.pop()!;
      size++;
      const x = pixel % width;
      const neighbours = [x > 0 ? pixel - 1 : -1, x < width - 1 ? pixel + 1 : -1, pixel - width, pixel + width];
      for (const next of neighbours) {
        if (next >= 0 && next < width * height && isInk[next] && !seen[next]) {
          seen[next] = 1;
          stack.push(next);
        }
      }
    }
    shapes.push(size);
  }
  return { ink, shapes };
}

/** Moves the scrubber as a user would (an input event). */
async function scrubTo(page: Page, step: number): Promise<void> {
  await page.locator('[data-testid="scrubber"]').evaluate((input, value) => {
    (input as HTMLInputElement).value = String(value);
    input.dispatchEvent(new Event('input', { bubbles: true }));
  }, step);
}

describe('web viewer in Chromium', () => {
  let kura: TestApp;
  let browser: Browser;
  let page: Page;
  let base: string;
  let operator: { id: string; key: string };
  let developer: { id: string; key: string };
  let imagesDataset: string;
  let videoDataset: string;
  let privateDataset: string;
  let policyId: string;
  const problems: string[] = [];

  const names = new Map<string, string>();
  /** A dataset whose episode buckets suit the test (they come from its id): created until one does (the others stay, empty). */
  async function createDataset(
    access: 'public' | 'private',
    name: string,
    wanted: (bucketOf: (index: number) => number) => boolean,
    features?: unknown,
  ) {
    for (let attempt = 0; ; attempt++) {
      const response = await kura.request
        .post('/v1/datasets')
        .set(bearer(operator.key))
        .send({
          name: `${name}-${Date.now()}-${attempt}`,
          robotId: await robot(),
          access,
          license: 'CC-BY-4.0',
          ...(features ? { features } : {}),
        });
      expect(response.status).toBe(201);
      if (wanted((index) => episodeBucket(response.body.id, index))) {
        names.set(response.body.id as string, response.body.name as string);
        return response.body.id as string;
      }
    }
  }
  let robotId: string | undefined;
  async function robot(): Promise<string> {
    if (robotId) return robotId;
    const response = await kura.request
      .post('/v1/robots')
      .set(bearer(operator.key))
      .send({ name: 'test arm', robotType: 'so101', controlFrequencyHz: 30, actionSpace: 'joint_position', jointNames: STATE_NAMES });
    expect(response.status).toBe(201);
    robotId = response.body.id as string;
    const urdf = await readFile(so101Urdf);
    const bodyModel = await kura.request
      .put(`/v1/robots/${robotId}/body-model`)
      .set(bearer(operator.key))
      .set('Content-Type', 'application/xml')
      .send(urdf);
    expect(bodyModel.status).toBe(200);
    return robotId;
  }

  async function open(path: string): Promise<void> {
    await page.goto(`${base}${path}`);
  }

  /**
   * Right after an episode page is ready, before any interaction: the scrubber is at step 0, and
   * every plot's cursor is on step 0 with its legend showing step 0's values as the API serves them.
   */
  async function expectFirstPaintAtStepZero(): Promise<void> {
    const sliceHref = await page.locator('a[href^="/v1/slices/"]').getAttribute('href');
    const rows = await kura.request.get(sliceHref!);
    expect(rows.status).toBe(200);
    const first = JSON.parse(rows.text.slice(0, rows.text.indexOf('\n'))) as SliceRow;
    expect(await page.locator('[data-testid="scrubber"]').inputValue()).toBe('0');
    expect(await page.locator('[data-testid="step-label"]').innerText()).toMatch(new RegExp(`^step ${first.step ?? 0} · 1 of `));
    const plots = await page.locator('[data-testid="plot"]').evaluateAll((elements) =>
      elements.map((plot) => ({
        name: plot.getAttribute('data-name') ?? '',
        legend: [...plot.querySelectorAll('.u-legend .u-series .u-value')].map((cell) => cell.textContent ?? ''),
        cursorOffset:
          plot.querySelector('.u-cursor-x')!.getBoundingClientRect().left - plot.querySelector('.u-over')!.getBoundingClientRect().left,
      })),
    );
    expect(plots.length).toBeGreaterThan(0);
    const disagreements: string[] = [];
    for (const plot of plots) {
      const expected = [first.timestamp, ...featureNumbers(first, plot.name)];
      expect(plot.legend).toHaveLength(expected.length);
      plot.legend.forEach((shown, index) => {
        if (!printedAs(shown, expected[index]!))
          disagreements.push(`${plot.name} series ${index}: shows ${shown}, step 0 is ${expected[index]}`);
      });
      // The first step is the x scale's minimum: its cursor sits on the plot's left edge.
      if (Math.abs(plot.cursorOffset) > 1) disagreements.push(`${plot.name}: cursor ${plot.cursorOffset.toFixed(1)} px from step 0`);
    }
    expect(disagreements).toEqual([]);
  }

  async function typeKey(key: string): Promise<void> {
    await page.fill('[data-testid="key-input"]', key);
    await page.click('[data-testid="key-save"]');
  }

  async function forgetKey(): Promise<void> {
    await page.click('[data-testid="key-forget"]');
  }

  beforeAll(async () => {
    await access(webDist).catch(() => {
      throw new Error(`the web viewer is not built (${webDist} is missing): run \`npm run build\` (npm test does) first`);
    });
    await access(CHROMIUM).catch(() => {
      throw new Error(`Chromium is not at ${CHROMIUM}: apt-get install -y chromium (or set KURA_TEST_CHROMIUM)`);
    });
    // The training run's Python policy is evaluated on a loaded machine too: give its calls room.
    kura = await startTestApp({ KURA_POLICY_CALL_TIMEOUT_MS: '1000' });
    await kura.app.listen(0, '127.0.0.1');
    base = `http://127.0.0.1:${(kura.app.getHttpServer().address() as AddressInfo).port}`;
    operator = await kura.createKey('operator');
    developer = await kura.createKey('developer');

    // Episode 0: long, readable by anyone; episode 1: held out (evaluations run on it).
    imagesDataset = await createDataset('public', 'blocks', (bucketOf) => bucketOf(0) < 90 && bucketOf(1) >= 90, {
      'observation.state': { dtype: 'float32', shape: [3], names: STATE_NAMES },
      'observation.images.front': { dtype: 'image', shape: [48, 64, 3], encoding: 'jpeg' },
      action: { dtype: 'float32', shape: [2], names: ['target', 'episode'] },
    });
    await publish(kura, operator.key, imagesDataset, episodesNdjson([LONG_EPISODE, 30, 20]));
    videoDataset = await createDataset('public', 'unitree-g1', (bucketOf) => bucketOf(0) < 90);
    await publishLerobot(kura, operator.key, videoDataset, await unitreeEpisode29());
    privateDataset = await createDataset('private', 'secret', () => true);
    await publish(kura, operator.key, privateDataset, episodesNdjson([5]));

    policyId = await deployPolicy(kura, developer.key, {
      'policy.json': JSON.stringify({
        name: 'blocks-echo',
        runtime: 'js',
        entry: 'policy.js',
        observation: ['observation.state'],
        action: { shape: [2] },
      }),
      'policy.js': `function act(observation, context) { const s = observation['observation.state'][0]; return [context.step, -Math.floor(s / 1000)]; }`,
    });
    const evaluation = await kura.request
      .post(`/v1/policies/${policyId}/evaluations`)
      .set(bearer(developer.key))
      .send({ datasetId: imagesDataset });
    expect(evaluation.status).toBe(202);

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-quic',
        '--no-first-run',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      // Refused API calls (401/403/404) show as failed resources; the pages under test expect those.
      if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) problems.push(`console: ${message.text()}`);
    });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await kura?.close();
  });

  it('draws the brand 蔵 without any CJK font installed: several strokes of ink, not a missing-glyph box', async () => {
    // Four device pixels per CSS pixel, as on a HiDPI screen, so that separate strokes stay apart.
    const sharp = await browser.newPage({ viewport: { width: 800, height: 300 }, deviceScaleFactor: 4 });
    try {
      await sharp.goto(`${base}/datasets`);
      expect(await sharp.getByRole('link', { name: 'Kura 蔵' }).count()).toBe(1);
      const kanji = sharp.locator('header .brand-kanji');
      const box = (await kanji.boundingBox())!;
      expect(box.height).toBeGreaterThanOrEqual(14); // about the height of the brand's letters
      const shot = await kanji.screenshot({ type: 'png' });
      await mkdir(outputDir, { recursive: true });
      await writeFile(`${outputDir}brand.png`, shot);
      const image = jpeg.decode(await kanji.screenshot({ type: 'jpeg', quality: 100 }), { useTArray: true });
      const { ink, shapes } = inkShapes(image);
      const area = image.width * image.height;
      expect(ink / area).toBeGreaterThan(0.15);
      expect(ink / area).toBeLessThan(0.6);
      // 蔵 drawn with strokes falls apart into several shapes (艹's pieces, the dot, 臣, the frame); a
      // missing-glyph box is one outline.
      expect(shapes.filter((size) => size >= 20).length).toBeGreaterThanOrEqual(4);
    } finally {
      await sharp.close();
    }
  });

  it('lists datasets with robot, episodes, steps, access and license; private ones only with a key', async () => {
    await open('/');
    const table = page.locator('[data-testid="datasets-table"]');
    await table.waitFor();
    const text = await table.innerText();
    expect(text).toContain(names.get(imagesDataset));
    expect(text).toContain(names.get(videoDataset));
    expect(text).not.toContain('secret-');
    const row = page.locator('tr', { has: page.locator(`a:text-is("${names.get(imagesDataset)}")`) });
    expect(await row.locator('td').allInnerTexts()).toEqual([
      names.get(imagesDataset),
      'test arm (so101)',
      '3',
      (LONG_EPISODE + 50).toLocaleString('en-US'),
      'public',
      'CC-BY-4.0',
    ]);
    await typeKey(operator.key);
    await page.locator(`[data-testid="datasets-table"] a:text-is("${names.get(privateDataset)}")`).waitFor();
    await forgetKey();
    await page.locator('[data-testid="key-input"]').waitFor();
  });

  it('shows a dataset: robot, features, statistics, filtered episodes, and uploads for operator keys', async () => {
    await open(`/datasets/${imagesDataset}`);
    await page.locator('[data-testid="episodes-table"]').waitFor();
    expect(await page.locator('[data-testid="dataset-name"]').innerText()).toBe(names.get(imagesDataset));
    expect(await page.locator('[data-testid="robot"]').innerText()).toContain('joint_position');
    const joints = await page.locator('[data-testid="body-model-joints"] tbody tr').allInnerTexts();
    // SO-101: 6 revolute joints and a fixed gripper frame, each with its links and limits.
    expect(joints).toHaveLength(7);
    expect(joints).toContainEqual(
      expect.stringMatching(/^shoulder_pan\s+revolute\s+base_link → shoulder_link\s+lower -1\.920, upper 1\.920/),
    );
    expect(joints).toContainEqual(expect.stringMatching(/^gripper_frame_joint\s+fixed/));
    expect(await page.locator('[data-testid="features-table"]').innerText()).toContain('shoulder, elbow, wrist');
    const stats = await page.locator('[data-testid="stats-table"]').innerText();
    expect(stats).toContain('shoulder');
    expect(stats).toContain((LONG_EPISODE + 50).toLocaleString('en-US')); // count of every row
    const rows = () => page.locator('[data-testid="episodes-table"] tbody tr').allInnerTexts();
    expect(await rows()).toHaveLength(3);
    expect((await rows())[1]).toContain('held out');
    await page.fill('input[name="minLength"]', '25');
    await page.fill('input[name="maxLength"]', '100');
    await page.click('[data-testid="episode-filters"] button[type="submit"]');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="episodes-table"] tbody tr').length === 1);
    // Kura's index, then the source's own episode id (the NDJSON `episode`), then the length.
    expect((await rows())[0]).toMatch(/^1\s+1\s+30\s+stack the blocks 1/);

    // Uploads need an operator (or admin) key: a clear note without one, the history with one.
    const note = await page.locator('[data-testid="inline-error"]').innerText();
    expect(note).toContain('operator and admin keys');
    expect(note).toContain('AUTH_REQUIRED');
    // Terms for everyone; earnings only for the dataset's owner.
    expect(await page.locator('[data-testid="terms"]').innerText()).toContain('No terms set');
    expect(await page.locator('[data-testid="earnings"]').count()).toBe(0);
    await typeKey(operator.key);
    const uploads = page.locator('[data-testid="uploads-table"]');
    await uploads.waitFor();
    expect(await uploads.innerText()).toContain('published');
    await page.locator('[data-testid="earnings"]').waitFor();
    expect(await page.locator('[data-testid="earnings"]').innerText()).toContain('0.00 USD from 0 calls');
    await forgetKey();
  });

  it('shows upload errors with their location', async () => {
    // Two steps whose timestamps go back: the ingest fails at episode 0, step 1, field timestamp.
    const line = (step: number, timestamp: number) =>
      JSON.stringify({
        episode: 0,
        step,
        timestamp,
        observation: { state: [0, 0, 0], 'images.front': { jpeg: frames[0] } },
        action: [0, 0],
      });
    const accepted = await kura.request
      .post(`/v1/datasets/${imagesDataset}/uploads?format=kura-ndjson&fileName=backwards.ndjson`)
      .set(bearer(operator.key))
      .set('Content-Type', 'application/x-ndjson')
      .send(Buffer.from(`${line(0, 0.1)}\n${line(1, 0.05)}\n`));
    expect(accepted.status).toBe(202);
    await eventually(async () => {
      const upload = await kura.request.get(`/v1/uploads/${accepted.body.id}`).set(bearer(operator.key));
      return upload.body.status === 'failed' ? upload.body : undefined;
    }, 30_000);
    await open(`/datasets/${imagesDataset}`);
    await typeKey(operator.key);
    const error = page.locator('[data-testid="uploads-table"] tr', { hasText: accepted.body.id }).locator('ul.issues.errors li');
    await error.waitFor();
    const text = await error.innerText();
    expect(text).toContain('NON_MONOTONIC_TIMESTAMP');
    expect(text).toContain('at file backwards.ndjson');
    expect(text).toContain('step 1 · field timestamp');
    await forgetKey();
  });

  it('plays a 1,200-step episode: a plot per vector feature, camera frames, a scrubber that moves plot cursors and frames', async () => {
    const started = Date.now();
    await open(`/datasets/${imagesDataset}/episodes/0`);
    const viewer = page.locator('[data-testid="episode-viewer"][data-ready="true"]');
    await viewer.waitFor({ timeout: 30_000 });
    const loadMs = Date.now() - started;
    await expectFirstPaintAtStepZero();
    expect(await page.locator('[data-testid="task"]').innerText()).toContain('stack the blocks 0');
    expect(await page.locator('[data-testid="source-episode"]').innerText()).toBe('0');
    expect(await page.locator('[data-testid="plot"]').count()).toBe(2);
    // Series are named by the features' `names`.
    const legend = await page.locator('[data-testid="plot"][data-name="observation.state"] .u-legend').innerText();
    for (const name of STATE_NAMES) expect(legend).toContain(name);

    // The plots really draw lines (coloured pixels on their canvas), the camera a real frame.
    const plot = await pixelsOf(page, '[data-testid="plot"][data-name="observation.state"] canvas');
    expect(plot.coloured).toBeGreaterThan(500);
    await page.waitForFunction(() => document.querySelector('canvas[data-testid="camera-frame"]')?.getAttribute('data-step') === '0');
    const first = await pixelsOf(page, 'canvas[data-testid="camera-frame"]');
    expect({ width: first.width, height: first.height }).toEqual({ width: 64, height: 48 });
    expect(first.distinct).toBeGreaterThan(50);
    expect(first.std).toBeGreaterThan(10);

    // Scrubbing: the same plot canvases (not re-rendered), their cursor moved, another frame drawn.
    await page.evaluate(() => document.querySelectorAll('.uplot canvas').forEach((canvas) => canvas.setAttribute('data-kept', 'yes')));
    const cursor = () =>
      page
        .locator('[data-testid="plot"][data-name="observation.state"] .u-cursor-x')
        .evaluate((element) => element.getBoundingClientRect().left);
    const before = await cursor();
    await scrubTo(page, 650);
    await page.waitForFunction(() => document.querySelector('canvas[data-testid="camera-frame"]')?.getAttribute('data-step') === '650');
    expect(await cursor()).toBeGreaterThan(before + 100);
    expect(await page.locator('[data-testid="step-label"]').innerText()).toContain('step 650');
    expect(await page.locator('[data-testid="plot"][data-name="observation.state"] .u-legend').innerText()).toContain('650');
    const later = await pixelsOf(page, 'canvas[data-testid="camera-frame"]');
    expect(later.checksum).not.toBe(first.checksum);
    expect(await page.locator('.uplot canvas:not([data-kept])').count()).toBe(0);

    // Scrubbing through every step stays fast: no per-step re-render.
    const sweepMs = await page.evaluate(async () => {
      const input = document.querySelector<HTMLInputElement>('[data-testid="scrubber"]')!;
      const start = performance.now();
      for (let step = 0; step < 1200; step += 3) {
        input.value = String(step);
        input.dispatchEvent(new Event('input', { bubbles: true }));
      }
      await new Promise((resolve) => requestAnimationFrame(resolve));
      return performance.now() - start;
    });
    expect(sweepMs).toBeLessThan(3000);

    // Play advances the steps on its own.
    await scrubTo(page, 0);
    await page.click('[data-testid="play"]');
    await page.waitForFunction(() => Number(document.querySelector<HTMLInputElement>('[data-testid="scrubber"]')!.value) > 15);
    await page.click('[data-testid="play"]');
    expect(loadMs).toBeLessThan(30_000);
  });

  it('plays a LeRobot video feature: the mp4 seeked to each step’s frame, 26-dimension plots named by the fixture', async () => {
    await open(`/datasets/${videoDataset}/episodes/0`);
    await page.locator('[data-testid="episode-viewer"][data-ready="true"]').waitFor({ timeout: 30_000 });
    await expectFirstPaintAtStepZero();
    expect(await page.locator('[data-testid="task"]').innerText()).toContain(G1_TASK);
    // Kura's episode 0 is the fixture's episode_000029.
    expect(await page.locator('[data-testid="source-episode"]').innerText()).toBe('29');
    expect(await page.locator('[data-testid="plot"]').count()).toBe(2);
    expect(await page.locator('[data-testid="plot"][data-name="action"] .u-legend').innerText()).toContain('kLeftShoulderPitch');
    const video = `video[data-testid="camera-video"][data-name="${CAM_HIGH}"]`;
    const frameAt = async (step: number) => {
      await page.waitForFunction(
        ({ selector, time }) => {
          const element = document.querySelector<HTMLVideoElement>(selector);
          return !!element && element.readyState >= 2 && !element.seeking && Math.abs(element.currentTime - time) < 0.01;
        },
        { selector: video, time: step / 30 },
        { timeout: 20_000 },
      );
      return pixelsOf(page, video);
    };
    const first = await frameAt(0);
    expect({ width: first.width, height: first.height }).toEqual({ width: 640, height: 480 });
    expect(first.distinct).toBeGreaterThan(1000);
    expect(first.std).toBeGreaterThan(10);
    await scrubTo(page, 150);
    const later = await frameAt(150);
    expect(later.checksum).not.toBe(first.checksum);
    await scrubTo(page, 110);
    await frameAt(110);
    expect(await page.locator('[data-testid="step-label"]').innerText()).toContain('step 110');
    await mkdir(outputDir, { recursive: true });
    await page.screenshot({ path: `${outputDir}episode-page.png`, fullPage: true });
  });

  it('shows the leaderboard and a policy page with its manifest and evaluations', async () => {
    await open(`/datasets/${imagesDataset}/leaderboard`);
    const board = page.locator('[data-testid="leaderboard-table"]');
    // The evaluation runs in the background: reload until it is on the board.
    for (let attempt = 0; attempt < 60 && !(await board.isVisible()); attempt++) {
      await page.waitForTimeout(250);
      await page.reload();
      await page.locator('h1').waitFor();
    }
    expect(await board.innerText()).toContain('blocks-echo v1');
    await page.click('text=blocks-echo v1');
    await page.locator('[data-testid="evaluations-table"]').waitFor();
    expect(await page.locator('[data-testid="policy-name"]').innerText()).toBe('blocks-echo v1');
    expect(await page.locator('pre.json').innerText()).toContain('"entry": "policy.js"');
    const evaluations = await page.locator('[data-testid="evaluations-table"]').innerText();
    expect(evaluations).toContain(imagesDataset);
    expect(evaluations).toContain('completed');
  });

  /**
   * Uploads a trainer that needs no torch (its train.py is `trainPy`, run on the public blocks
   * dataset) and starts a run of it as the developer: a run in a few seconds.
   */
  async function startTraining(name: string, trainPy: string[], hyperparameters: Record<string, unknown> = {}) {
    const accepted = await kura.request
      .post('/v1/trainers')
      .set(bearer(developer.key))
      .set('Content-Type', 'application/octet-stream')
      .send(
        await tarGzOf({
          'trainer.json': JSON.stringify({
            name,
            runtime: 'python',
            entry: 'train.py',
            features: ['observation.state', 'action'],
            resources: { cpuSeconds: 30, memoryMb: 512, wallSeconds: 60 },
          }),
          'train.py': trainPy.join('\n'),
        }),
      );
    expect(accepted.status).toBe(202);
    const trainer = await eventually(async () => {
      const response = await kura.request.get(`/v1/trainers/${accepted.body.id}`).set(bearer(developer.key));
      return response.body.status === 'validating' ? undefined : (response.body as { id: string; status: string });
    }, 60_000);
    expect(trainer.status).toBe('ready');
    const created = await kura.request
      .post('/v1/trainings')
      .set(bearer(developer.key))
      .send({ trainerId: trainer.id, sources: [{ datasetId: imagesDataset }], hyperparameters });
    expect(created.status).toBe(202);
    return created;
  }

  it('follows a training run live: its status until it fails, the error, a plot per metric series, lineage and the log', async () => {
    // It prints a few metric lines, pauses (so the page sees the run going), and fails on purpose.
    const created = await startTraining(
      'quick-quitter',
      [
        'import json, sys, time',
        'for step in range(1, 4): print(json.dumps({"step": step, "loss": 1 / step, "lr": 0.001}), flush=True)',
        'time.sleep(1.5)',
        'for step in range(4, 6): print(json.dumps({"step": step, "loss": 1 / step, "lr": 0.0005}), flush=True)',
        'print("giving up on purpose", flush=True)',
        'sys.exit(3)',
      ],
      { epochs: 3 },
    );
    const trainingId = created.body.id as string;

    // Reached from the header, with the developer's key (runs are private to their owner).
    await open('/datasets');
    await typeKey(developer.key);
    await page.click('header nav a:text-is("Trainings")');
    const row = page.locator('[data-testid="trainings-table"] tr', { hasText: trainingId });
    await row.waitFor();
    expect(await row.innerText()).toContain('quick-quitter');
    await row.locator('a').click();
    await page.locator('[data-testid="training-id"]').waitFor();
    expect(new URL(page.url()).pathname).toBe(`/trainings/${trainingId}`);

    // The page polls: the run ends on screen without a reload (the marked heading stays).
    await page.locator('h1').evaluate((heading) => heading.setAttribute('data-kept', 'yes'));
    await page.locator('[data-testid="training-status"]', { hasText: 'failed' }).waitFor({ timeout: 60_000 });
    expect(await page.locator('h1[data-kept="yes"]').count()).toBe(1);
    const error = await page.locator('[data-testid="training-error"]').innerText();
    expect(error).toContain('TRAINING_FAILED');

    // A plot per series, the loss first, each really drawing its line and holding every point.
    const plots = page.locator('[data-testid="metric-plot"]');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="metric-plot"] canvas').length === 2);
    expect(await plots.evaluateAll((elements) => elements.map((plot) => plot.getAttribute('data-name')))).toEqual(['loss', 'lr']);
    expect(await page.locator('.plot h3', { hasText: 'loss' }).innerText()).toContain('5 points');
    expect(await plots.first().locator('.u-legend').innerText()).toContain('loss');
    expect((await pixelsOf(page, '[data-testid="metric-plot"][data-name="loss"] canvas')).coloured).toBeGreaterThan(100);

    // Lineage: the trainer, the source as pinned (held-out episodes left out), hyperparameters, resources.
    const lineage = page.locator('[data-testid="lineage"]');
    expect(await lineage.locator('[data-testid="lineage-trainer"]').innerText()).toContain('quick-quitter');
    const pinned = (created.body.sources as Array<{ version: number; episodes: number; steps: number }>)[0]!;
    expect(pinned.episodes).toBeGreaterThan(0);
    const sourceRows = lineage.locator('[data-testid="sources-table"] tbody tr');
    expect(await sourceRows.count()).toBe(1);
    expect((await sourceRows.locator('td').allInnerTexts()).map((cell) => cell.trim())).toEqual([
      names.get(imagesDataset),
      String(pinned.version),
      '1',
      pinned.episodes.toLocaleString('en-US'),
      pinned.steps.toLocaleString('en-US'),
      '0',
    ]);
    expect(await lineage.locator(`a[href="/datasets/${imagesDataset}"]`).count()).toBe(1);
    expect(await page.locator('[data-testid="hyperparameters"]').innerText()).toContain('"epochs": 3');
    expect(await page.locator('[data-testid="resources"]').innerText()).toContain('30 CPU s');

    // The log of a run on data the developer may download: whole, not guarded.
    const log = page.locator('[data-testid="training-log"]');
    await log.waitFor();
    expect(await log.innerText()).toContain('giving up on purpose');
    expect(await page.locator('[data-testid="log-guarded"]').count()).toBe(0);
    // A failed run registers no policy.
    expect(await page.locator('[data-testid="outcome"]').count()).toBe(0);

    // Back on the list, the run's final status and latest loss (1/5).
    await page.click('.crumbs a:text-is("Trainings")');
    const ended = page.locator('[data-testid="trainings-table"] tr', { hasText: trainingId });
    await ended.waitFor();
    const cells = (await ended.locator('td').allInnerTexts()).map((cell) => cell.trim());
    expect(cells.slice(0, 5)).toEqual([trainingId, 'quick-quitter', 'failed', pinned.steps.toLocaleString('en-US'), '0.2000']);
    await mkdir(outputDir, { recursive: true });
    await page.goto(`${base}/trainings/${trainingId}`);
    await page.locator('[data-testid="training-log"]').waitFor();
    await page.screenshot({ path: `${outputDir}training-page.png`, fullPage: true });
    await forgetKey();
  }, 120_000);

  it('links a succeeded run to the policy it registered, its evaluation (action MSE) and its leaderboard place', async () => {
    // The trainer "learns" the blocks policy exactly (action = [step, −episode]) and leaves it in /out
    // as a Python policy: its evaluation on the held-out episodes has an action MSE of 0.
    const policy = [
      'import math',
      'def act(observation, context):',
      '    return [context["step"], -math.floor(observation["observation.state"][0] / 1000)]',
    ].join('\n');
    const manifest = { name: 'x', runtime: 'python', entry: 'policy.py', observation: ['observation.state'], action: { shape: [2] } };
    const created = await startTraining('echo-learner', [
      'import json, os',
      'out = os.environ["KURA_OUT_DIR"]',
      'for step in range(1, 4): print(json.dumps({"step": step, "loss": 0.5 / step}), flush=True)',
      `open(os.path.join(out, "policy.json"), "w").write(${JSON.stringify(JSON.stringify(manifest))})`,
      `open(os.path.join(out, "policy.py"), "w").write(${JSON.stringify(policy)})`,
    ]);
    const trainingId = created.body.id as string;
    await open(`/trainings/${trainingId}`);
    await typeKey(developer.key);
    await page.locator('[data-testid="training-status"]', { hasText: 'succeeded' }).waitFor({ timeout: 60_000 });
    expect(await page.locator('[data-testid="training-error"]').count()).toBe(0);
    expect(await page.locator('[data-testid="policy-link"]').innerText()).toBe('echo-learner v1');

    // The evaluation ends after the run: the section polls until it has, then shows its place.
    const evaluation = page.locator('[data-testid="training-evaluations"] tbody tr', { hasText: 'completed' });
    await evaluation.waitFor({ timeout: 120_000 });
    const cells = (await evaluation.locator('td').allInnerTexts()).map((cell) => cell.trim());
    expect(cells.slice(1)).toEqual([imagesDataset, '1', 'completed', '0']);
    const place = await page.locator('[data-testid="leaderboard-places"] li').innerText();
    // Tied with blocks-echo, which is exact too.
    expect(place).toMatch(new RegExp(`^${imagesDataset}: rank [12] of 2 \\(action MSE 0\\)$`));

    await page.click('[data-testid="policy-link"]');
    expect(await page.locator('[data-testid="policy-name"]').innerText()).toBe('echo-learner v1');
    await forgetKey();
  }, 240_000);

  it.each([
    ['an unknown dataset', () => '/datasets/ds_000000000000000000000000', 'Error 404', 'DATASET_NOT_FOUND'],
    ['a private dataset without a key', () => `/datasets/${privateDataset}`, 'Error 404', 'DATASET_NOT_FOUND'],
    ['an episode of a private dataset without a key', () => `/datasets/${privateDataset}/episodes/0`, 'Error 404', 'DATASET_NOT_FOUND'],
    ['an unknown episode', () => `/datasets/${imagesDataset}/episodes/99`, 'cannot be shown', 'EPISODE_NOT_FOUND'],
    ['a held-out episode without an admin key', () => `/datasets/${imagesDataset}/episodes/1`, 'cannot be shown', 'EPISODE_HELD_OUT'],
    ['an unknown policy', () => '/policies/pol_000000000000000000000000', 'Error 404', 'POLICY_NOT_FOUND'],
    ['training runs without a key', () => '/trainings', 'Error 401', 'AUTH_REQUIRED'],
    ['a path the viewer does not know', () => '/datasets/x/y/z', 'Error 404', 'PAGE_NOT_FOUND'],
  ])('shows a clear error page for %s', async (_what, path, title, code) => {
    await open(path());
    const error = page.locator('[data-testid="error-page"]');
    await error.waitFor();
    expect(await error.locator('h1').innerText()).toContain(title);
    expect(await page.locator('[data-testid="error-code"]').innerText()).toBe(code);
    expect((await page.locator('[data-testid="error-message"]').innerText()).length).toBeGreaterThan(10);
  });

  it('shows a clear error page for a key the API does not know (401)', async () => {
    await open('/datasets');
    await typeKey('kura_not-a-key-this-server-issued-0000000000000');
    await page.locator('[data-testid="error-page"]').waitFor();
    expect(await page.locator('[data-testid="error-page"] h1').innerText()).toBe('Error 401');
    expect(await page.locator('[data-testid="error-code"]').innerText()).toBe('INVALID_API_KEY');
    await forgetKey();
    await page.locator('[data-testid="datasets-table"]').waitFor();
  });

  it('opens a private dataset once its owner’s key is typed in the header', async () => {
    await open(`/datasets/${privateDataset}`);
    await page.locator('[data-testid="error-page"]').waitFor();
    await typeKey(operator.key);
    const name = page.locator('[data-testid="dataset-name"]', { hasText: names.get(privateDataset)! });
    await name.waitFor();
    // The key is kept for the next visit.
    await page.reload();
    await name.waitFor();
    await forgetKey();
  });

  it('logged no script errors (CSP violations, exceptions) along the way', () => {
    expect(problems).toEqual([]);
  });
});
