//! The lineage graph of a product page, laid out for SVG: the products it
//! is built from on the left, the product in the middle, and who really
//! read it (the domain's read log, as reported to the catalog) on the right.

use mesh_contracts::catalog::Product;

const NODE_WIDTH: u32 = 250;
const NODE_HEIGHT: u32 = 46;
const ROW: u32 = 62;
const COLUMN_X: [u32; 3] = [10, 330, 650];
/// Consumers drawn at most; the rest are counted in one more box.
const MAX_CONSUMERS: usize = 8;
/// Characters of a label shown.
const LABEL_CHARS: usize = 34;

/// One box of the graph.
pub(crate) struct Node {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
    pub text_x: u32,
    pub text_y: u32,
    pub sub_y: u32,
    pub label: String,
    pub sub: String,
    /// `input`, `self` or `consumer`.
    pub kind: &'static str,
    pub href: Option<String>,
}

/// One arrow.
pub(crate) struct Edge {
    pub x1: u32,
    pub y1: u32,
    pub x2: u32,
    pub y2: u32,
}

/// The laid-out graph.
pub(crate) struct Lineage {
    pub width: u32,
    pub height: u32,
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    /// The graph in words, for screen readers and as a caption.
    pub summary: String,
}

fn cut(text: &str) -> String {
    if text.chars().count() <= LABEL_CHARS {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(LABEL_CHARS - 1).collect();
    cut.push('…');
    cut
}

fn node(
    column: usize,
    row: usize,
    rows: usize,
    height: u32,
    label: &str,
    sub: String,
    kind: &'static str,
) -> Node {
    // Each column is centred vertically.
    let top = (height - rows as u32 * ROW) / 2 + 8;
    let (x, y) = (COLUMN_X[column], top + row as u32 * ROW);
    Node {
        x,
        y,
        width: NODE_WIDTH,
        height: NODE_HEIGHT,
        text_x: x + 12,
        text_y: y + 20,
        sub_y: y + 37,
        label: cut(label),
        sub: cut(&sub),
        kind,
        href: None,
    }
}

/// The lineage of `product`.
pub(crate) fn lineage(product: &Product) -> Lineage {
    let consumers = product.data.as_ref().map(|d| d.consumers.as_slice()).unwrap_or_default();
    let counted = product.data.as_ref().map_or(0, |d| usize::try_from(d.consumer_count).unwrap_or(0));
    let shown = consumers.len().min(MAX_CONSUMERS);
    // Readers the caller may not see by name are shown as a count.
    let more = consumers.len().max(counted) - shown;
    let consumer_rows = shown + usize::from(more > 0);
    let rows = product.input_ports.len().max(consumer_rows).max(1);
    let height = rows as u32 * ROW + 16;
    let mut nodes = Vec::new();
    let mut edges = Vec::new();
    let center = node(1, 0, 1, height, &product.product_id, "this product".into(), "self");
    let (center_left, center_right, center_y) = (center.x, center.x + NODE_WIDTH, center.y + NODE_HEIGHT / 2);
    for (row, port) in product.input_ports.iter().enumerate() {
        let status = port.status().as_str_name().trim_start_matches("SERVING_STATUS_").to_ascii_lowercase();
        let mut input = node(0, row, product.input_ports.len(), height, &port.product, status, "input");
        input.href = Some(format!("/catalog/products/{}", port.product));
        edges.push(Edge {
            x1: input.x + NODE_WIDTH,
            y1: input.y + NODE_HEIGHT / 2,
            x2: center_left,
            y2: center_y,
        });
        nodes.push(input);
    }
    for (row, consumer) in consumers.iter().take(shown).enumerate() {
        let sub = format!("{} reads, {} rows", consumer.reads, consumer.rows);
        let reader = node(2, row, consumer_rows, height, &consumer.principal, sub, "consumer");
        edges.push(Edge { x1: center_right, y1: center_y, x2: reader.x, y2: reader.y + NODE_HEIGHT / 2 });
        nodes.push(reader);
    }
    if more > 0 {
        let rest = node(
            2,
            shown,
            consumer_rows,
            height,
            &format!("+{more} more readers"),
            String::new(),
            "consumer",
        );
        edges.push(Edge { x1: center_right, y1: center_y, x2: rest.x, y2: rest.y + NODE_HEIGHT / 2 });
        nodes.push(rest);
    }
    nodes.push(center);
    let inputs: Vec<&str> = product.input_ports.iter().map(|p| p.product.as_str()).collect();
    let readers: Vec<&str> = consumers.iter().map(|c| c.principal.as_str()).collect();
    let summary = format!(
        "{} is built from {}; read in the last 30 days by {}.",
        product.product_id,
        if inputs.is_empty() { "its domain's own source".to_owned() } else { inputs.join(", ") },
        match (readers.is_empty(), counted) {
            (true, 0) => "no one yet".to_owned(),
            (true, n) => format!("{n} principals (named to its owners)"),
            (false, _) => readers.join(", "),
        },
    );
    Lineage { width: COLUMN_X[2] + NODE_WIDTH + 10, height, nodes, edges, summary }
}

#[cfg(test)]
mod tests {
    use mesh_contracts::catalog::{Consumer, DataStatus, InputPort};

    use super::*;

    #[test]
    fn inputs_flow_in_and_readers_out() {
        let mut product = Product { product_id: "insight.segment_spending".into(), ..Default::default() };
        product.input_ports = ["customer.profiles", "payment.card_spending"]
            .map(|p| InputPort { product: p.into(), status: 1 })
            .to_vec();
        product.data = Some(DataStatus {
            consumers: (0..10)
                .map(|i| Consumer { principal: format!("reader-{i}"), ..Default::default() })
                .collect(),
            ..Default::default()
        });
        let graph = lineage(&product);
        assert_eq!(graph.nodes.len(), 2 + MAX_CONSUMERS + 1 + 1);
        assert_eq!(graph.edges.len(), 2 + MAX_CONSUMERS + 1);
        assert_eq!(graph.nodes[0].href.as_deref(), Some("/catalog/products/customer.profiles"));
        assert!(graph.nodes.iter().any(|n| n.label == "+2 more readers"));
        assert!(graph.nodes.iter().all(|n| n.y + n.height <= graph.height));
        assert!(
            graph.summary.starts_with(
                "insight.segment_spending is built from customer.profiles, payment.card_spending"
            )
        );
        let counted = Product {
            product_id: "a.b".into(),
            data: Some(DataStatus { consumer_count: 3, ..Default::default() }),
            ..Default::default()
        };
        let graph = lineage(&counted);
        assert!(graph.nodes.iter().any(|n| n.label == "+3 more readers"), "readers not named are counted");
        assert!(graph.summary.ends_with("read in the last 30 days by 3 principals (named to its owners)."));
        let alone = lineage(&Product { product_id: "a.b".into(), ..Default::default() });
        assert_eq!(alone.nodes.len(), 1);
        assert_eq!(
            alone.summary,
            "a.b is built from its domain's own source; read in the last 30 days by no one yet."
        );
    }
}
