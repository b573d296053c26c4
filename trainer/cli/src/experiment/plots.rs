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
    /// Line width in pixels (0: the default, 2).
    pub width: u32,
    /// Draw a marker every few points: 0 none, 1 circle, 2 triangle, 3 cross.
    pub marker: usize,
}

impl Series {
    /// A solid line of the default width without markers.
    pub fn line(label: impl Into<String>, points: Vec<(f64, f64)>, color: usize) -> Series {
        Series {
            label: label.into(),
            points,
            color,
            dashed: false,
            width: 0,
            marker: 0,
        }
    }
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

/// Draw a line chart of `series` on `area` (the y-axis starts at 0 when `y_from_zero` and every
/// value is non-negative: for heights a reader compares).
pub fn line_chart(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    title: &str,
    (x_desc, y_desc): (&str, &str),
    series: &[Series],
    legend: bool,
) -> Result<(), String> {
    line_chart_y0(area, title, (x_desc, y_desc), series, legend, false)
}

/// [`line_chart`] with the y-axis choice.
pub fn line_chart_y0(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    title: &str,
    (x_desc, y_desc): (&str, &str),
    series: &[Series],
    legend: bool,
    y_from_zero: bool,
) -> Result<(), String> {
    let xr = bounds(series, |p| p.0);
    let mut yr = bounds(series, |p| p.1);
    let lowest = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .filter(|v| v.is_finite())
        .fold(f64::INFINITY, f64::min);
    if y_from_zero && lowest >= 0.0 {
        yr.start = 0.0;
    }
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
        let w = if s.width == 0 { 2 } else { s.width };
        let style = if s.width > 3 {
            c.mix(0.45).stroke_width(w)
        } else {
            c.stroke_width(w)
        };
        let anno = if s.dashed {
            chart
                .draw_series(DashedLineSeries::new(pts.clone(), 6, 4, style))
                .map_err(err)?
        } else {
            chart
                .draw_series(LineSeries::new(pts.clone(), style))
                .map_err(err)?
        };
        let (len, dot) = (
            if s.dashed { 7 } else { 16 },
            if s.marker > 0 { 4 } else { 0 },
        );
        if legend {
            anno.label(s.label.clone()).legend(move |(x, y)| {
                EmptyElement::at((x, y))
                    + PathElement::new(vec![(0, 0), (len, 0)], style)
                    + Circle::new((10, 0), dot, c.filled())
            });
        }
        if s.marker > 0 {
            let step = (pts.len() / 12).max(1);
            let every: Vec<(f64, f64)> = pts
                .iter()
                .enumerate()
                .filter(|(k, _)| k % step == step / 2)
                .map(|(_, &p)| p)
                .collect();
            draw_markers(&mut chart, &every, s.marker, c)?;
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

type Chart<'a, 'b> = ChartContext<
    'a,
    BitMapBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// Markers of kind `kind` (1 circle, 2 triangle, 3 cross) at `points`.
fn draw_markers<'c, 'a, 'b>(
    chart: &'c mut Chart<'a, 'b>,
    points: &[(f64, f64)],
    kind: usize,
    c: RGBColor,
) -> Result<&'c mut plotters::chart::SeriesAnno<'a, BitMapBackend<'b>>, String> {
    let style = c.filled();
    match kind {
        2 => chart.draw_series(points.iter().map(|&p| TriangleMarker::new(p, 5, style))),
        3 => chart.draw_series(points.iter().map(|&p| Cross::new(p, 4, c.stroke_width(2)))),
        _ => chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, style))),
    }
    .map_err(err)
}

/// Draw vertical bars in groups on `area`: one group per category, one bar per series
/// `(label, value per category)`; the y-axis starts at 0.
pub fn grouped_bars(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    title: &str,
    (x_desc, y_desc): (&str, &str),
    categories: &[String],
    series: &[(String, Vec<f64>)],
) -> Result<(), String> {
    let max = series
        .iter()
        .flat_map(|s| s.1.iter().copied())
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max)
        .max(1e-3);
    let n = categories.len().max(1);
    let k = series.len().max(1);
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 16))
        .margin(8)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..n as f64, 0.0..max * 1.15)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_labels(n * 2 + 1)
        .x_label_formatter(&|x| {
            let i = (x - 0.5).round();
            if ((x - 0.5) - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < categories.len() {
                categories[i as usize].clone()
            } else {
                String::new()
            }
        })
        .label_style((FONT, 11))
        .axis_desc_style((FONT, 12))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(err)?;
    let width = 0.8 / k as f64;
    for (s, (label, values)) in series.iter().enumerate() {
        let c = color(s);
        chart
            .draw_series(values.iter().enumerate().map(|(i, &v)| {
                let x0 = i as f64 + 0.1 + s as f64 * width;
                let v = if v.is_finite() { v } else { 0.0 };
                Rectangle::new([(x0, 0.0), (x0 + width * 0.9, v)], c.filled())
            }))
            .map_err(err)?
            .label(label.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
    }
    chart
        .configure_series_labels()
        .label_font((FONT, 11))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(err)
}

/// Draw a scatter plot of `series` (points only, one marker kind per series) on `area`.
pub fn scatter(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    title: &str,
    (x_desc, y_desc): (&str, &str),
    series: &[Series],
) -> Result<(), String> {
    let (xr, yr) = (bounds(series, |p| p.0), bounds(series, |p| p.1));
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 16))
        .margin(8)
        .x_label_area_size(32)
        .y_label_area_size(48)
        .build_cartesian_2d(xr, yr)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .label_style((FONT, 11))
        .axis_desc_style((FONT, 12))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(err)?;
    for s in series {
        let c = color(s.color);
        let kind = s.marker.max(1);
        let pts: Vec<(f64, f64)> = s
            .points
            .iter()
            .copied()
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .collect();
        let anno = draw_markers(&mut chart, &pts, kind, c)?.label(s.label.clone());
        let style = c.filled();
        match kind {
            2 => anno.legend(move |(x, y)| TriangleMarker::new((x + 6, y), 5, style)),
            3 => anno.legend(move |(x, y)| Cross::new((x + 6, y), 4, c.stroke_width(2))),
            _ => anno.legend(move |(x, y)| Circle::new((x + 6, y), 4, style)),
        };
    }
    chart
        .configure_series_labels()
        .label_font((FONT, 11))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerLeft)
        .draw()
        .map_err(err)
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
            // Curves come in pairs of equal magnitude (preferred, dispreferred): the first of
            // each pair wide and pale, the second dashed with markers on top of it.
            label: c.label.clone(),
            points: c.points.clone(),
            color: i / 2,
            dashed: i % 2 == 1,
            width: if i % 2 == 0 { 7 } else { 2 },
            marker: if i % 2 == 1 { 1 + i / 2 } else { 0 },
        })
        .collect();
    panels(
        path,
        (800, 520),
        (1, 1),
        "Figure 1: |dL/dz_y| against pi(y), computed by bnf-core (each pair of curves coincides)",
        |_, area| line_chart(area, "", ("pi(y)", "|dL/dz_y|"), &series, true),
    )
}

/// A histogram of `values` over `range`: the bin fractions as a line, and how many values fell
/// below and above the range (left out of the bins, not piled into the edge ones; the value
/// at `range.end` itself is in the last bin).
pub fn histogram(
    values: &[f64],
    range: &Range<f64>,
    bins: usize,
) -> (Vec<(f64, f64)>, usize, usize) {
    let width = (range.end - range.start) / bins as f64;
    let mut counts = vec![0usize; bins];
    let (mut below, mut above) = (0, 0);
    for &v in values.iter().filter(|v| v.is_finite()) {
        if v < range.start {
            below += 1;
        } else if v > range.end {
            above += 1;
        } else {
            let k = ((v - range.start) / width).floor() as usize;
            counts[k.min(bins - 1)] += 1;
        }
    }
    let n = values.len().max(1) as f64;
    let line = counts
        .iter()
        .enumerate()
        .map(|(k, &c)| (range.start + (k as f64 + 0.5) * width, c as f64 / n))
        .collect();
    (line, below, above)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_leaves_out_of_range_values_out_and_counts_them() {
        let (line, below, above) =
            histogram(&[-5.0, 0.0, 0.1, 0.5, 0.99, 1.0, 7.0, 8.0], &(0.0..1.0), 2);
        assert_eq!((below, above), (1, 2));
        // 0, 0.1 in the first bin; 0.5, 0.99 and the end point 1.0 in the second; out of 8.
        assert_eq!(line, vec![(0.25, 2.0 / 8.0), (0.75, 3.0 / 8.0)]);
    }
}
