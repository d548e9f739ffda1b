//! The report as GitLab-flavoured Markdown (placeholder: being written).

use super::model::Report;

pub fn render(r: &Report) -> String {
    format!("# Weekly report\n\n{}\n", r.summary.join("\n"))
}
