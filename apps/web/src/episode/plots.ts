// One uPlot line plot per vector feature (one series per component), made once per episode. The
// player's step moves each plot's cursor (setCursor), which also updates the legend's values; the
// plots are never redrawn for a step. Clicking a plot seeks the player there.
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
      cursor: { y: false, drag: { x: false, y: false, setScale: false }, points: { size: 6 } },
      legend: { live: true },
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
      if (width !== this.plot.width) {
        this.plot.setSize({ width, height: PLOT_HEIGHT });
        this.show(this.player.step);
      }
    });
    this.resize.observe(container);
  }

  show(step: number): void {
    if (this.hovering) return;
    const time = this.times[step];
    if (time === undefined) return;
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
