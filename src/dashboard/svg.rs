//! The pictures: a run's task DAG, its timeline, and a pipeline's runs over
//! time. Pure: values in, SVG text out, drawn with presentation attributes
//! (no inline styles, so the pages' Content-Security-Policy can forbid them).
//!
//! The DAG is laid out in topological layers, left to right: a task's column
//! is one more than its deepest dependency's, so every edge points right.
//! Within a column, tasks are ordered by the mean row of their dependencies
//! (the barycenter heuristic), which keeps edges from crossing in the common
//! shapes (chains, fan-out, fan-in) without a full crossing minimisation.

use std::fmt::Write as _;

use super::html::{bytes, duration_ms, esc};
use super::model::{Segment, SegmentKind, TaskState};
use crate::store::RunPhase;

const NODE_W: i64 = 170;
const NODE_H: i64 = 38;
const GAP_X: i64 = 56;
const GAP_Y: i64 = 18;
const PAD: i64 = 12;
/// Longest label drawn in a node; the full name is in its tooltip.
const LABEL_CHARS: usize = 20;

/// Fill colours, shared with the legend in the stylesheet.
pub fn task_colour(state: TaskState) -> &'static str {
    match state {
        TaskState::Waiting => "#d4a72c",
        TaskState::Running => "#0969da",
        TaskState::Succeeded => "#1a7f37",
        TaskState::Failed => "#cf222e",
        TaskState::Stopped => "#6e7781",
        TaskState::Skipped => "#afb8c1",
    }
}

fn segment_colour(kind: SegmentKind) -> &'static str {
    match kind {
        SegmentKind::Queued => "#eac54f",
        SegmentKind::Running => "#0969da",
        SegmentKind::Succeeded => "#1a7f37",
        SegmentKind::Failed => "#cf222e",
        SegmentKind::Stopped => "#6e7781",
    }
}

pub fn phase_colour(phase: RunPhase) -> &'static str {
    match phase {
        RunPhase::Succeeded => "#1a7f37",
        RunPhase::Unchanged => "#4ac26b",
        RunPhase::Failed => "#cf222e",
        RunPhase::Cancelled => "#6e7781",
        RunPhase::Queued => "#d4a72c",
        RunPhase::Fetching | RunPhase::Running | RunPhase::Publishing | RunPhase::Committing => {
            "#0969da"
        }
    }
}

/// A node of the DAG picture.
#[derive(Debug, Clone, PartialEq)]
pub struct DagNode {
    pub name: String,
    pub state: TaskState,
}

/// Where each node goes: `(column, row)`.
pub fn layout(n: usize, edges: &[(usize, usize)]) -> Vec<(usize, usize)> {
    let edges: Vec<(usize, usize)> = edges
        .iter()
        .copied()
        .filter(|&(a, b)| a < n && b < n && a != b)
        .collect();
    // Longest path from a root. Relaxing n times settles any acyclic input
    // whatever its order; a cycle (never produced by the config parser)
    // merely stops growing after n rounds instead of looping.
    let mut column = vec![0usize; n];
    for _ in 0..n {
        let mut changed = false;
        for &(a, b) in &edges {
            if column[b] < column[a] + 1 && column[a] < n {
                column[b] = column[a] + 1;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let depth = column.iter().copied().max().map_or(0, |m| m + 1);
    let mut row = vec![0usize; n];
    for c in 0..depth {
        let mut members: Vec<(f64, usize)> = (0..n)
            .filter(|&i| column[i] == c)
            .map(|i| {
                let preds: Vec<usize> = edges
                    .iter()
                    .filter(|&&(_, b)| b == i)
                    .map(|&(a, _)| row[a])
                    .collect();
                let key = if preds.is_empty() {
                    i as f64
                } else {
                    preds.iter().sum::<usize>() as f64 / preds.len() as f64
                };
                (key, i)
            })
            .collect();
        members.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
        for (r, (_, i)) in members.into_iter().enumerate() {
            row[i] = r;
        }
    }
    column.into_iter().zip(row).collect()
}

fn label(name: &str) -> String {
    if name.chars().count() <= LABEL_CHARS {
        return name.to_string();
    }
    let mut cut: String = name.chars().take(LABEL_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// The DAG as SVG; each node links to `#task-<name>` on the same page.
pub fn dag(nodes: &[DagNode], edges: &[(usize, usize)]) -> String {
    let places = layout(nodes.len(), edges);
    let cols = places.iter().map(|p| p.0 + 1).max().unwrap_or(1) as i64;
    let rows = places.iter().map(|p| p.1 + 1).max().unwrap_or(1) as i64;
    let width = PAD * 2 + cols * NODE_W + (cols - 1) * GAP_X;
    let height = PAD * 2 + rows * NODE_H + (rows - 1) * GAP_Y;
    let at = |i: usize| {
        let (c, r) = places[i];
        (
            PAD + c as i64 * (NODE_W + GAP_X),
            PAD + r as i64 * (NODE_H + GAP_Y),
        )
    };
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"dag\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"task graph\">\
         <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" \
         markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#57606a\"/></marker></defs>"
    );
    for &(a, b) in edges {
        if a >= nodes.len() || b >= nodes.len() || a == b {
            continue;
        }
        let (ax, ay) = at(a);
        let (bx, by) = at(b);
        let (x1, y1) = (ax + NODE_W, ay + NODE_H / 2);
        let (x2, y2) = (bx - 2, by + NODE_H / 2);
        let bend = (x2 - x1).max(20) / 2;
        let _ = write!(
            s,
            "<path class=\"edge\" data-from=\"{}\" data-to=\"{}\" d=\"M{x1},{y1} C{},{y1} {},{y2} {x2},{y2}\" \
             fill=\"none\" stroke=\"#57606a\" stroke-width=\"1.5\" marker-end=\"url(#arrow)\"/>",
            esc(&nodes[a].name),
            esc(&nodes[b].name),
            x1 + bend,
            x2 - bend,
        );
    }
    for (i, node) in nodes.iter().enumerate() {
        let (x, y) = at(i);
        let state = node.state.as_str();
        let name = esc(&node.name);
        let text_fill = if node.state == TaskState::Skipped {
            "#24292f"
        } else {
            "#ffffff"
        };
        let _ = write!(
            s,
            "<a href=\"#task-{name}\"><g class=\"node\" data-task=\"{name}\" data-state=\"{state}\">\
             <title>{name}: {state}</title>\
             <rect x=\"{x}\" y=\"{y}\" width=\"{NODE_W}\" height=\"{NODE_H}\" rx=\"6\" fill=\"{}\" stroke=\"#24292f\" stroke-opacity=\"0.25\"/>\
             <text x=\"{}\" y=\"{}\" font-size=\"13\" font-family=\"sans-serif\" fill=\"{text_fill}\">{}</text>\
             <text x=\"{}\" y=\"{}\" font-size=\"10\" font-family=\"sans-serif\" fill=\"{text_fill}\" fill-opacity=\"0.85\">{state}</text>\
             </g></a>",
            task_colour(node.state),
            x + 10,
            y + 16,
            esc(&label(&node.name)),
            x + 10,
            y + 31,
        );
    }
    s.push_str("</svg>");
    s
}

/// One row of the timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineRow {
    pub task: String,
    pub segments: Vec<Segment>,
}

/// Bars of queued and attempt time per task, on one time axis from the
/// run's start to `end`, so the slow step is the long bar.
pub fn timeline(rows: &[TimelineRow], start: i64, end: i64) -> String {
    const LABEL_W: i64 = 170;
    const BAR_W: i64 = 560;
    const ROW_H: i64 = 24;
    const AXIS_H: i64 = 22;
    let span = (end - start).max(1);
    let height = rows.len() as i64 * ROW_H + AXIS_H + 6;
    let width = LABEL_W + BAR_W + 16;
    let x_of = |t: i64| {
        LABEL_W + ((t - start).clamp(0, span) as f64 / span as f64 * BAR_W as f64).round() as i64
    };
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"timeline of the tasks\">"
    );
    for (i, row) in rows.iter().enumerate() {
        let y = i as i64 * ROW_H;
        let name = esc(&row.task);
        let _ = write!(
            s,
            "<g class=\"lane\" data-task=\"{name}\"><text x=\"0\" y=\"{}\" font-size=\"12\" font-family=\"sans-serif\" fill=\"#24292f\">{}</text>",
            y + 16,
            esc(&label(&row.task)),
        );
        for seg in &row.segments {
            let x = x_of(seg.start);
            let w = (x_of(seg.end) - x).max(2);
            let what = match seg.attempt {
                Some(n) => format!("attempt {n} {}", seg.kind.as_str()),
                None => seg.kind.as_str().to_string(),
            };
            let _ = write!(
                s,
                "<rect class=\"segment\" data-kind=\"{}\" x=\"{x}\" y=\"{}\" width=\"{w}\" height=\"{}\" rx=\"2\" fill=\"{}\">\
                 <title>{name}: {what}, {}</title></rect>",
                seg.kind.as_str(),
                y + 4,
                ROW_H - 8,
                segment_colour(seg.kind),
                duration_ms(seg.end - seg.start),
            );
        }
        s.push_str("</g>");
    }
    let axis_y = rows.len() as i64 * ROW_H + 2;
    let _ = write!(
        s,
        "<line x1=\"{LABEL_W}\" y1=\"{axis_y}\" x2=\"{}\" y2=\"{axis_y}\" stroke=\"#8c959f\"/>",
        LABEL_W + BAR_W
    );
    for q in 0..=4 {
        let t = start + span * q / 4;
        let x = x_of(t);
        let anchor = match q {
            0 => "start",
            4 => "end",
            _ => "middle",
        };
        let _ = write!(
            s,
            "<text x=\"{x}\" y=\"{}\" font-size=\"10\" font-family=\"sans-serif\" fill=\"#57606a\" text-anchor=\"{anchor}\">{}</text>",
            axis_y + 14,
            esc(&duration_ms(t - start)),
        );
    }
    s.push_str("</svg>");
    s
}

/// One run in the pipeline's charts.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartPoint {
    pub run_id: String,
    pub href: String,
    pub phase: RunPhase,
    pub duration_ms: Option<i64>,
    pub size: Option<u64>,
}

/// Two small charts over the same runs, oldest left: duration as bars in
/// the colour of the outcome, and the dataset size each run published.
pub fn run_charts(points: &[ChartPoint]) -> String {
    const W: i64 = 640;
    const H: i64 = 110;
    const LEFT: i64 = 80;
    let n = points.len().max(1) as i64;
    let slot = (W - LEFT) / n;
    let bar = (slot - 4).clamp(2, 28);
    let max_ms = points
        .iter()
        .filter_map(|p| p.duration_ms)
        .max()
        .unwrap_or(0)
        .max(1);
    let sizes: Vec<u64> = points.iter().filter_map(|p| p.size).collect();
    let (min_size, max_size) = (
        sizes.iter().copied().min().unwrap_or(0),
        sizes.iter().copied().max().unwrap_or(0),
    );
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{}\" viewBox=\"0 0 {W} {}\" role=\"img\" aria-label=\"run durations and dataset sizes\">",
        2 * H + 30,
        2 * H + 30
    );
    // Durations.
    let _ = write!(
        s,
        "<g class=\"durations\"><text x=\"0\" y=\"14\" font-size=\"11\" font-family=\"sans-serif\" fill=\"#57606a\">duration</text>\
         <text x=\"0\" y=\"30\" font-size=\"10\" font-family=\"sans-serif\" fill=\"#57606a\">max {}</text>\
         <line x1=\"{LEFT}\" y1=\"{H}\" x2=\"{W}\" y2=\"{H}\" stroke=\"#8c959f\"/>",
        esc(&duration_ms(max_ms))
    );
    for (i, p) in points.iter().enumerate() {
        let Some(ms) = p.duration_ms else { continue };
        let h = ((ms as f64 / max_ms as f64) * (H - 10) as f64)
            .round()
            .max(2.0) as i64;
        let x = LEFT + i as i64 * slot + (slot - bar) / 2;
        let _ = write!(
            s,
            "<a href=\"{}\"><rect class=\"bar\" data-run=\"{}\" x=\"{x}\" y=\"{}\" width=\"{bar}\" height=\"{h}\" fill=\"{}\">\
             <title>{}: {} ({})</title></rect></a>",
            esc(&p.href),
            esc(&p.run_id),
            H - h,
            phase_colour(p.phase),
            esc(&p.run_id),
            esc(&duration_ms(ms)),
            p.phase.as_str(),
        );
    }
    s.push_str("</g>");
    // Sizes.
    let top = H + 30;
    let _ = write!(
        s,
        "<g class=\"sizes\"><text x=\"0\" y=\"{}\" font-size=\"11\" font-family=\"sans-serif\" fill=\"#57606a\">dataset size</text>",
        top + 14
    );
    if sizes.is_empty() {
        let _ = write!(
            s,
            "<text x=\"{LEFT}\" y=\"{}\" font-size=\"11\" font-family=\"sans-serif\" fill=\"#57606a\">no run published a version yet</text>",
            top + H / 2
        );
    } else {
        let _ = write!(
            s,
            "<text x=\"0\" y=\"{}\" font-size=\"10\" font-family=\"sans-serif\" fill=\"#57606a\">{}</text>\
             <text x=\"0\" y=\"{}\" font-size=\"10\" font-family=\"sans-serif\" fill=\"#57606a\">{}</text>\
             <line x1=\"{LEFT}\" y1=\"{}\" x2=\"{W}\" y2=\"{}\" stroke=\"#8c959f\"/>",
            top + 30,
            esc(&bytes(max_size)),
            top + H - 4,
            esc(&bytes(min_size)),
            top + H,
            top + H
        );
        // A flat line when every version has the same size: the middle.
        let y_of = |size: u64| {
            if max_size == min_size {
                top + H / 2
            } else {
                top + H
                    - 6
                    - (((size - min_size) as f64 / (max_size - min_size) as f64) * (H - 24) as f64)
                        .round() as i64
            }
        };
        let coords: Vec<(i64, i64, &ChartPoint)> = points
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                p.size
                    .map(|sz| (LEFT + i as i64 * slot + slot / 2, y_of(sz), p))
            })
            .collect();
        if coords.len() > 1 {
            let path: Vec<String> = coords.iter().map(|(x, y, _)| format!("{x},{y}")).collect();
            let _ = write!(
                s,
                "<polyline points=\"{}\" fill=\"none\" stroke=\"#8250df\" stroke-width=\"1.5\"/>",
                path.join(" ")
            );
        }
        for (x, y, p) in coords {
            let _ = write!(
                s,
                "<a href=\"{}\"><circle class=\"point\" data-run=\"{}\" cx=\"{x}\" cy=\"{y}\" r=\"4\" fill=\"#8250df\">\
                 <title>{}: {}</title></circle></a>",
                esc(&p.href),
                esc(&p.run_id),
                esc(&p.run_id),
                esc(&bytes(p.size.unwrap_or(0))),
            );
        }
    }
    s.push_str("</g></svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_put_every_edge_left_to_right() {
        // a -> b -> d, a -> c -> d, e alone.
        let edges = [(0, 1), (0, 2), (1, 3), (2, 3)];
        let places = layout(5, &edges);
        assert_eq!(places[0].0, 0);
        assert_eq!(places[1].0, 1);
        assert_eq!(places[2].0, 1);
        assert_eq!(places[3].0, 2);
        assert_eq!(places[4].0, 0);
        for (a, b) in edges {
            assert!(places[a].0 < places[b].0);
        }
        // Two nodes never share a place.
        let mut seen = places.clone();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 5);
    }

    #[test]
    fn the_longest_path_decides_the_column_whatever_the_input_order() {
        // c needs a and b; b needs a: c is in column 2 even though its edge
        // from a is listed first.
        let places = layout(3, &[(0, 2), (1, 2), (0, 1)]);
        assert_eq!(places.iter().map(|p| p.0).collect::<Vec<_>>(), [0, 1, 2]);
        // A cycle (which the parser rejects) still terminates.
        let places = layout(2, &[(0, 1), (1, 0)]);
        assert_eq!(places.len(), 2);
    }

    #[test]
    fn the_dag_draws_each_task_in_its_state_colour_with_escaped_names() {
        let nodes = [
            DagNode {
                name: "fetch".into(),
                state: TaskState::Succeeded,
            },
            DagNode {
                name: "<b>x</b>".into(),
                state: TaskState::Failed,
            },
        ];
        let svg = dag(&nodes, &[(0, 1)]);
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("data-task=\"fetch\" data-state=\"succeeded\""));
        assert!(svg.contains(&format!("fill=\"{}\"", task_colour(TaskState::Failed))));
        assert!(svg.contains("data-from=\"fetch\" data-to=\"&lt;b&gt;x&lt;/b&gt;\""));
        assert!(!svg.contains("<b>"));
        assert_eq!(svg.matches("class=\"node\"").count(), 2);
        assert_eq!(svg.matches("class=\"edge\"").count(), 1);
    }

    #[test]
    fn long_names_are_cut_in_the_node_and_whole_in_the_tooltip() {
        let name = "a_very_long_task_name_that_does_not_fit";
        let svg = dag(
            &[DagNode {
                name: name.into(),
                state: TaskState::Waiting,
            }],
            &[],
        );
        assert!(svg.contains(&format!("<title>{name}: waiting</title>")));
        assert!(svg.contains("a_very_long_task_na…"));
    }

    #[test]
    fn timeline_bars_are_proportional_to_time() {
        let rows = [TimelineRow {
            task: "slow".into(),
            segments: vec![
                Segment {
                    kind: SegmentKind::Queued,
                    start: 0,
                    end: 250,
                    attempt: None,
                },
                Segment {
                    kind: SegmentKind::Succeeded,
                    start: 250,
                    end: 1000,
                    attempt: Some(1),
                },
            ],
        }];
        let svg = timeline(&rows, 0, 1000);
        // 560 px for 1000 ms: the queue is 140 px, the attempt 420 px.
        assert!(
            svg.contains("data-kind=\"queued\" x=\"170\" y=\"4\" width=\"140\""),
            "{svg}"
        );
        assert!(
            svg.contains("data-kind=\"succeeded\" x=\"310\" y=\"4\" width=\"420\""),
            "{svg}"
        );
        assert!(svg.contains("attempt 1 succeeded, 750 ms"));
    }

    #[test]
    fn charts_draw_a_bar_per_finished_run_and_a_point_per_size() {
        let point = |id: &str, ms: Option<i64>, size: Option<u64>| ChartPoint {
            run_id: id.into(),
            href: format!("/runs/{id}"),
            phase: RunPhase::Succeeded,
            duration_ms: ms,
            size,
        };
        let svg = run_charts(&[
            point("r1", Some(1000), Some(100)),
            point("r2", None, None),
            point("r3", Some(3000), Some(300)),
        ]);
        assert_eq!(svg.matches("class=\"bar\"").count(), 2);
        assert_eq!(svg.matches("class=\"point\"").count(), 2);
        assert!(svg.contains("max 3.0 s"));
        assert!(svg.contains("<polyline"));
        let empty = run_charts(&[point("r1", Some(5), None)]);
        assert!(empty.contains("no run published a version yet"));
    }
}
