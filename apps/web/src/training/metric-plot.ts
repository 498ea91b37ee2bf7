// One uPlot line plot per metric series of a training run, against the trainer's `step`. A plot is
// made once and fed new points with setData while the run goes on, so a refresh does not rebuild it.
//
// Each series gets its own plot (and y scale): a run's series differ by orders of magnitude (a loss
// near 0.01, a learning rate near 1e-4, an episode count in the hundreds), and on one shared axis all
// but the largest would lie flat.
import uPlot from 'uplot';

const PLOT_HEIGHT = 200;

/** The same colours as the episode plots: hues spread by the golden angle. */
const colour = (index: number) => `hsl(${Math.round((index * 137.508) % 360)}, 65%, 45%)`;

/** Steps are whole numbers: the x axis ticks only at 1, 2, 5 × 10ⁿ (never at step 1.2). */
const stepIncrements = Array.from({ length: 10 }, (_, power) => [1, 2, 5].map((digit) => digit * 10 ** power)).flat();

/** uPlot wants columns with the x values ascending; a trainer may print its steps in any order. */
function columnsOf(points: Array<[number, number]>): uPlot.AlignedData {
  const sorted = [...points].sort((a, b) => a[0] - b[0]);
  return [Float64Array.from(sorted, ([step]) => step), Float64Array.from(sorted, ([, value]) => value)];
}

export class MetricPlot {
  readonly plot: uPlot;
  private readonly resize: ResizeObserver;

  constructor(container: HTMLElement, name: string, index: number, points: Array<[number, number]>) {
    const options: uPlot.Options = {
      width: Math.max(320, container.clientWidth),
      height: PLOT_HEIGHT,
      scales: { x: { time: false } },
      series: [
        { label: 'step', value: (_plot, value) => (value === null ? '—' : String(value)) },
        {
          label: name,
          stroke: colour(index),
          width: 1.5,
          value: (_plot: uPlot, value: number | null) => (value === null ? '—' : formatValue(value)),
        },
      ],
      axes: [
        { label: 'step', size: 40, incrs: stepIncrements },
        // uPlot's own tick labels round small values alike (0.0009, 0.0008 and 0.0007 all read 0.001).
        { size: 70, values: (_plot, ticks) => ticks.map(formatTick) },
      ],
      cursor: { y: false, drag: { x: true, y: false } },
      legend: { live: true },
    };
    this.plot = new uPlot(options, columnsOf(points), container);
    this.resize = new ResizeObserver(() => {
      const width = Math.max(320, container.clientWidth);
      if (width !== this.plot.width) this.plot.setSize({ width, height: PLOT_HEIGHT });
    });
    this.resize.observe(container);
  }

  /** New points of a running run; the scales follow them. */
  update(points: Array<[number, number]>): void {
    this.plot.setData(columnsOf(points));
  }

  dispose(): void {
    this.resize.disconnect();
    this.plot.destroy();
  }
}

function formatTick(value: number): string {
  return String(Number(value.toPrecision(6)));
}

function formatValue(value: number): string {
  const abs = Math.abs(value);
  return abs !== 0 && (abs < 1e-3 || abs >= 1e5) ? value.toExponential(3) : value.toFixed(4);
}
