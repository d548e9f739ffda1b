//! Inline SVG charts for the HTML report (placeholder: being written).
