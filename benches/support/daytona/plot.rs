//! The latency distribution plot: one cumulative distribution curve per flow, log-scaled
//! milliseconds across, as an SVG document.

use std::time::Duration;

use plotters::prelude::*;

/// The y axis runs past 1.0 so that the legend has a band of its own.
const LEGEND_TOP: f64 = 1.32;

/// Line colours, in series order.
const COLORS: [RGBColor; 6] = [RED, BLUE, GREEN, MAGENTA, CYAN, BLACK];

/// A chart on an SVG string with coordinates `X` by `Y`.
type Chart<'a, 'b, X, Y> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<X, Y>>;

/// One line and its legend entry.
fn draw_line<X, Y>(
    chart: &mut Chart<'_, '_, X, Y>,
    points: Vec<(f64, f64)>,
    label: &str,
    color: RGBColor,
) -> Result<(), String>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    chart
        .draw_series(LineSeries::new(points, color.stroke_width(2)))
        .map_err(|e| e.to_string())?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    Ok(())
}

/// The legend, top left.
fn draw_legend<'b, X: Ranged, Y: Ranged>(chart: &mut Chart<'b, 'b, X, Y>) -> Result<(), String> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())
}

/// One curve.
pub struct Series<'a> {
    /// Legend text.
    pub label: String,
    /// Every sample.
    pub samples: &'a [Duration],
}

/// Renders the curves; `title` heads the plot.
pub fn render_cdf(title: &str, series: &[Series<'_>]) -> Result<String, String> {
    let sorted: Vec<Vec<f64>> = series
        .iter()
        .map(|s| {
            let mut v: Vec<f64> = s.samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
            v.sort_by(|a, b| a.total_cmp(b));
            v
        })
        .collect();
    let all = sorted.iter().flatten().copied();
    let lo = all.clone().fold(f64::INFINITY, f64::min);
    let hi = all.fold(0.0_f64, f64::max);
    if !lo.is_finite() || hi <= 0.0 {
        return Err("no samples to plot".into());
    }
    // Start at a power of ten: plotters labels a log axis from the first one in range.
    let (lo, hi) = (10f64.powf(lo.log10().floor()), hi * 1.1);

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 520)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d((lo..hi).log_scale(), 0.0..LEGEND_TOP)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("round-trip wall time per command (ms, log scale)")
            .y_desc("fraction of commands at or below")
            .x_labels(16)
            .light_line_style(TRANSPARENT)
            .x_label_formatter(&|v| format!("{v:.1}"))
            // The band above 1.0 holds the legend, clear of the curves.
            .y_label_formatter(&|v| {
                if *v <= 1.0 {
                    format!("{v:.1}")
                } else {
                    String::new()
                }
            })
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, (s, v)) in series.iter().zip(&sorted).enumerate() {
            let color = COLORS[i % COLORS.len()];
            let n = v.len() as f64;
            // A step curve: at each sample the fraction jumps by 1/n.
            let mut points = Vec::with_capacity(v.len() * 2);
            for (k, &x) in v.iter().enumerate() {
                points.push((x, k as f64 / n));
                points.push((x, (k + 1) as f64 / n));
            }
            draw_line(&mut chart, points, &s.label, color)?;
        }
        draw_legend(&mut chart)?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// One line of [`render_lines`].
pub struct Line {
    /// Legend text.
    pub label: String,
    /// `(x, y)` points, in x order.
    pub points: Vec<(f64, f64)>,
}

/// Renders lines with markers on linear axes; `title` heads the plot.
pub fn render_lines(
    title: &str,
    x_desc: &str,
    y_desc: &str,
    lines: &[Line],
) -> Result<String, String> {
    let all = || lines.iter().flat_map(|l| l.points.iter().copied());
    let x_hi = all().map(|(x, _)| x).fold(0.0_f64, f64::max).max(1.0) * 1.05;
    let y_hi = all().map(|(_, y)| y).fold(0.0_f64, f64::max);
    if y_hi <= 0.0 {
        return Err("no points to plot".into());
    }
    // Head room for the legend.
    let y_hi = y_hi * 1.45;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 520)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..x_hi, 0.0..y_hi)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .light_line_style(TRANSPARENT)
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, line) in lines.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            draw_line(&mut chart, line.points.clone(), &line.label, color)?;
            chart
                .draw_series(
                    line.points
                        .iter()
                        .map(|&p| Circle::new(p, 3, color.filled())),
                )
                .map_err(|e| e.to_string())?;
        }
        draw_legend(&mut chart)?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}
