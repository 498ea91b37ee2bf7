// One uPlot line plot per vector feature (one series per component), made once per episode. The
// player's step moves each plot's cursor (setCursor), which also updates the legend's values; the
// plots are never redrawn for a step. Clicking a plot seeks the player there.
//
// uPlot lays a plot out in a microtask after construction (and again after each resize): a cursor set
// before that lands on a position computed from no scale, and the legend shows another step than the
// scrubber. So the cursor is (re)placed from the setSize hook, once the layout is real.
import uPlot from 'uplot';
import type { VectorTrack } from './load';
import type { Player } from './player';

const PLOT_HEIGHT = 220;

/** Distinct colours for many series: hues spread by the golden angle. */
const colour = (index: number) => `hsl(${Math.round((index * 137.508) % 360)}, 65%, 45%)`;

export class FeaturePlot {
  readonly plot: uPlot;
  private readonly resize: ResizeObserver;
  private hovering = false;
  /** Until uPlot's first layout, a pixel position for the cursor would be meaningless. */
  private laidOut = false;
  /** The step the player last showed: the legend shows exactly its values, even where timestamps repeat. */
  private shownStep: number | null = null;

  constructor(
    container: HTMLElement,
    track: VectorTrack,
    private readonly times: Float64Array,
    private readonly player: Player,
  ) {
    const options: uPlot.Options = {
      width: Math.max(320, container.clientWidth),
      height: PLOT_HEIGHT,
      scales: { x: { time: false } },
      series: [
        { label: 't (s)', value: (_plot, value) => (value === null ? '—' : value.toFixed(3)) },
        ...track.components.map((label, index) => ({
          label,
          stroke: colour(index),
          width: 1,
          value: (_plot: uPlot, value: number | null) => (value === null ? '—' : formatValue(value)),
        })),
      ],
      axes: [{ label: 'time (s)', size: 40 }, { size: 60 }],
      cursor: {
        y: false,
        drag: { x: false, y: false, setScale: false },
        points: { size: 6 },
        // The mouse picks the nearest step; the player's step is taken as is.
        dataIdx: (_plot, _series, closest) => (this.hovering || this.shownStep === null ? closest : this.shownStep),
      },
      legend: { live: true },
      hooks: {
        setSize: [
          () => {
            this.laidOut = true;
            this.show(this.player.step);
          },
        ],
      },
    };
    this.plot = new uPlot(options, [times, ...track.values], container);
    // The mouse shows values where it is; when it leaves, the cursor goes back to the player's step.
    this.plot.over.addEventListener('mouseenter', () => (this.hovering = true));
    this.plot.over.addEventListener('mouseleave', () => {
      this.hovering = false;
      this.show(this.player.step);
    });
    this.plot.over.addEventListener('click', () => {
      const index = this.plot.cursor.idx;
      if (index !== null && index !== undefined) this.player.seek(index);
    });
    this.resize = new ResizeObserver(() => {
      const width = Math.max(320, container.clientWidth);
      // The setSize hook puts the cursor back once the new layout is done.
      if (width !== this.plot.width) this.plot.setSize({ width, height: PLOT_HEIGHT });
    });
    this.resize.observe(container);
  }

  show(step: number): void {
    if (this.hovering || !this.laidOut) return;
    const time = this.times[step];
    if (time === undefined) return;
    this.shownStep = step;
    this.plot.setCursor({ left: this.plot.valToPos(time, 'x'), top: 0 });
  }

  dispose(): void {
    this.resize.disconnect();
    this.plot.destroy();
  }
}

function formatValue(value: number): string {
  const abs = Math.abs(value);
  return abs !== 0 && (abs < 1e-3 || abs >= 1e5) ? value.toExponential(3) : value.toFixed(4);
}
