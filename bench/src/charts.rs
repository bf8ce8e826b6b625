//! SVG charts of a run (`bench run --charts DIR`): orders per second against clients, the
//! distribution of placement latency, and the CPU each process spends per order. SVG text is
//! left to the viewer, so no font files are needed.

use plotters::prelude::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

const SIZE: (u32, u32) = (760, 420);

fn chart_error(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("drawing a chart: {e}")
}

/// Orders settled per second for each number of clients, with the database ceiling measured
/// at one client count as a reference line.
pub fn throughput(
    dir: &Path,
    points: &[(usize, f64)],
    ceiling: Option<(usize, f64)>,
) -> anyhow::Result<PathBuf> {
    let path = dir.join("throughput.svg");
    let root = SVGBackend::new(&path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(chart_error)?;
    let max_clients = points.iter().map(|p| p.0).max().unwrap_or(1).max(1) as f64;
    let max_rate = points
        .iter()
        .map(|p| p.1)
        .chain(ceiling.map(|c| c.1))
        .fold(1.0_f64, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Orders settled per second (Prefer: wait)",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((0.5_f64..max_clients * 1.2).log_scale(), 0.0..max_rate)
        .map_err(chart_error)?;
    chart
        .configure_mesh()
        .x_desc("concurrent clients")
        .y_desc("orders/s")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()
        .map_err(chart_error)?;
    let series: Vec<(f64, f64)> = points.iter().map(|(c, r)| (*c as f64, *r)).collect();
    chart
        .draw_series(LineSeries::new(series.clone(), BLUE.stroke_width(2)))
        .map_err(chart_error)?
        .label("order service, end to end")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLUE));
    chart
        .draw_series(series.iter().map(|p| Circle::new(*p, 4, BLUE.filled())))
        .map_err(chart_error)?;
    if let Some((clients, rate)) = ceiling {
        chart
            .draw_series(std::iter::once(Circle::new(
                (clients as f64, rate),
                6,
                RED.filled(),
            )))
            .map_err(chart_error)?
            .label(format!("database ceiling ({clients} clients)"))
            .legend(|(x, y)| Circle::new((x + 8, y), 4, RED.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(chart_error)?;
    root.present().map_err(chart_error)?;
    drop(chart);
    drop(root);
    Ok(path)
}

/// The distribution of latency: for each quantile, the latency it reaches.
pub fn latency(
    dir: &Path,
    name: &str,
    title: &str,
    quantiles: &[(f64, Duration)],
) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!("{name}.svg"));
    let root = SVGBackend::new(&path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(chart_error)?;
    let ms: Vec<(f64, f64)> = quantiles
        .iter()
        .map(|(q, d)| (q * 100.0, d.as_secs_f64() * 1000.0))
        .collect();
    let max_ms = ms.iter().map(|p| p.1).fold(1.0_f64, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0_f64..100.0, 0.0..max_ms)
        .map_err(chart_error)?;
    chart
        .configure_mesh()
        .x_desc("percentile of requests")
        .y_desc("latency (ms)")
        .draw()
        .map_err(chart_error)?;
    chart
        .draw_series(LineSeries::new(ms, BLUE.stroke_width(2)))
        .map_err(chart_error)?;
    root.present().map_err(chart_error)?;
    drop(chart);
    drop(root);
    Ok(path)
}

/// CPU milliseconds per order of each process, as horizontal bars.
pub fn cpu(dir: &Path, title: &str, per_process: &[(String, f64)]) -> anyhow::Result<PathBuf> {
    let path = dir.join("cpu-per-order.svg");
    let root = SVGBackend::new(&path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(chart_error)?;
    let max_ms = per_process.iter().map(|p| p.1).fold(0.01_f64, f64::max) * 1.2;
    let names: Vec<String> = per_process.iter().map(|p| p.0.clone()).collect();
    // Each process has a band of BAND units on the y axis; its bar fills the middle of it, its
    // name sits at the band's centre.
    const BAND: usize = 4;
    let bands = names.len().max(1) * BAND;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(110)
        .build_cartesian_2d(0.0..max_ms, 0..bands)
        .map_err(chart_error)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(bands + 1)
        .x_desc("CPU ms per order")
        .y_label_formatter(&|v| {
            if v % BAND == BAND / 2 {
                names.get(v / BAND).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .draw()
        .map_err(chart_error)?;
    chart
        .draw_series(per_process.iter().enumerate().map(|(i, (_, ms))| {
            Rectangle::new(
                [(0.0, i * BAND + 1), (*ms, i * BAND + BAND - 1)],
                BLUE.mix(0.7).filled(),
            )
        }))
        .map_err(chart_error)?;
    root.present().map_err(chart_error)?;
    drop(chart);
    drop(root);
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_chart_is_an_svg_with_its_labels() {
        let dir = std::env::temp_dir().join(format!("bench-charts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let t = throughput(
            &dir,
            &[(1, 100.0), (8, 700.0), (32, 1500.0)],
            Some((32, 3000.0)),
        )
        .expect("throughput");
        let l = latency(
            &dir,
            "latency",
            "Placement latency",
            &[
                (0.5, Duration::from_millis(3)),
                (0.99, Duration::from_millis(9)),
            ],
        )
        .expect("latency");
        let c = cpu(
            &dir,
            "CPU per order",
            &[("api".into(), 0.3), ("postgres".into(), 0.2)],
        )
        .expect("cpu");
        for (path, label) in [
            (t, "concurrent clients"),
            (l, "percentile"),
            (c, "postgres"),
        ] {
            let svg = std::fs::read_to_string(&path).expect("written");
            assert!(svg.starts_with("<svg"), "{}", path.display());
            assert!(svg.contains(label), "{} lacks {label}", path.display());
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
