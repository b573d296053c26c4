//! The report's PNG plots (plotters' bitmap backend; text drawn with the DejaVu Sans font
//! embedded by the `dejavu` crate, so no system font is needed).

use super::figure1::Curve;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::ops::Range;
use std::sync::OnceLock;

/// The font family every plot uses.
const FONT: &str = "sans-serif";

fn err(e: impl std::fmt::Display) -> String {
    format!("plot: {e}")
}

/// Register the embedded font once per process.
fn font() -> Result<(), String> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular())
            .map_err(|_| "plot: the embedded DejaVu Sans font did not load".to_string())
    })
    .clone()
}

/// One line of a chart.
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend text.
    pub label: String,
    /// Points in drawing order.
    pub points: Vec<(f64, f64)>,
    /// Colour index in the palette.
    pub color: usize,
    /// Dashed instead of solid.
    pub dashed: bool,
}

/// The palette colour `i`.
pub fn color(i: usize) -> RGBColor {
    const COLORS: [RGBColor; 10] = [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(255, 127, 14),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
    ];
    COLORS[i % COLORS.len()]
}

/// A range covering every point of `series` (padded; never empty).
fn bounds(series: &[Series], pick: fn(&(f64, f64)) -> f64) -> Range<f64> {
    let vals = series
        .iter()
        .flat_map(|s| s.points.iter().map(pick))
        .filter(|v| v.is_finite());
    let (lo, hi) = vals.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    let pad = ((hi - lo) * 0.05).max(1e-3);
    (lo - pad)..(hi + pad)
}

/// Draw a line chart of `series` on `area`.
pub fn line_chart(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    title: &str,
    (x_desc, y_desc): (&str, &str),
    series: &[Series],
    legend: bool,
) -> Result<(), String> {
    let (xr, yr) = (bounds(series, |p| p.0), bounds(series, |p| p.1));
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 16))
        .margin(8)
        .x_label_area_size(32)
        .y_label_area_size(48)
        .build_cartesian_2d(xr, yr)
        .map_err(err)?;
    // Steps and bin numbers are integers: label them so, and few enough not to overlap.
    let integer_x = series
        .iter()
        .flat_map(|s| s.points.iter())
        .all(|p| p.0.fract() == 0.0);
    let x_fmt = |x: &f64| {
        if integer_x {
            format!("{x:.0}")
        } else {
            // At most 3 decimals, trailing zeros dropped (0.6, not 0.6000000000000001).
            let s = format!("{x:.3}");
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        }
    };
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_labels(8)
        .x_label_formatter(&x_fmt)
        .label_style((FONT, 11))
        .axis_desc_style((FONT, 12))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(err)?;
    for s in series {
        let c = color(s.color);
        let pts: Vec<(f64, f64)> = s
            .points
            .iter()
            .copied()
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .collect();
        let anno = if s.dashed {
            chart
                .draw_series(DashedLineSeries::new(pts, 6, 4, c.stroke_width(2)))
                .map_err(err)?
        } else {
            chart
                .draw_series(LineSeries::new(pts, c.stroke_width(2)))
                .map_err(err)?
        };
        if legend {
            anno.label(s.label.clone()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2))
            });
        }
    }
    if legend {
        chart
            .configure_series_labels()
            .label_font((FONT, 11))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(err)?;
    }
    Ok(())
}

/// Draw horizontal bars `(label, value)` on `area`.
pub fn bar_chart(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    title: &str,
    x_desc: &str,
    bars: &[(String, f64)],
) -> Result<(), String> {
    let max = bars
        .iter()
        .map(|b| b.1)
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max)
        .max(1e-3);
    let n = bars.len().max(1);
    let labels: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 16))
        .margin(8)
        .x_label_area_size(32)
        .y_label_area_size(110)
        .build_cartesian_2d(0.0..max * 1.1, 0.0..n as f64)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_labels(n * 2 + 1)
        .y_label_formatter(&|y| {
            let k = y - 0.5;
            let i = k.round();
            if (k - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < labels.len() {
                labels[i as usize].clone()
            } else {
                String::new()
            }
        })
        .label_style((FONT, 11))
        .axis_desc_style((FONT, 12))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(err)?;
    chart
        .draw_series(bars.iter().enumerate().map(|(i, b)| {
            let v = if b.1.is_finite() { b.1 } else { 0.0 };
            Rectangle::new(
                [(0.0, i as f64 + 0.15), (v, i as f64 + 0.85)],
                color(i).filled(),
            )
        }))
        .map_err(err)?;
    Ok(())
}

/// A PNG of `width x height` split into `rows x cols` panels, each drawn by `draw(index, area)`.
pub fn panels(
    path: &str,
    (width, height): (u32, u32),
    (rows, cols): (usize, usize),
    title: &str,
    mut draw: impl FnMut(usize, &DrawingArea<BitMapBackend<'_>, Shift>) -> Result<(), String>,
) -> Result<(), String> {
    font()?;
    let root = BitMapBackend::new(path, (width, height)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let root = root.titled(title, (FONT, 20)).map_err(err)?;
    for (i, area) in root.split_evenly((rows, cols)).iter().enumerate() {
        draw(i, area)?;
    }
    root.present().map_err(|e| format!("{path}: {e}"))
}

/// The paper's Figure 1.
pub fn figure1(path: &str, curves: &[Curve]) -> Result<(), String> {
    let series: Vec<Series> = curves
        .iter()
        .enumerate()
        .map(|(i, c)| Series {
            label: c.label.clone(),
            points: c.points.clone(),
            color: i / 2,
            dashed: i % 2 == 1,
        })
        .collect();
    panels(
        path,
        (800, 520),
        (1, 1),
        "Figure 1: likelihood-derivative curves (computed by bnf-core)",
        |_, area| line_chart(area, "", ("pi(y)", "|dL/dz_y|"), &series, true),
    )
}

/// A histogram of `values` over `range` as a line of bin fractions.
pub fn histogram(values: &[f64], range: &Range<f64>, bins: usize) -> Vec<(f64, f64)> {
    let width = (range.end - range.start) / bins as f64;
    let mut counts = vec![0usize; bins];
    for &v in values.iter().filter(|v| v.is_finite()) {
        let k = ((v - range.start) / width).floor();
        counts[(k.max(0.0) as usize).min(bins - 1)] += 1;
    }
    let n = values.len().max(1) as f64;
    counts
        .iter()
        .enumerate()
        .map(|(k, &c)| (range.start + (k as f64 + 0.5) * width, c as f64 / n))
        .collect()
}
