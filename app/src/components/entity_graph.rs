//! [`EntityGraph`]: the entities extraction found and their relations, drawn as a graph (an
//! SVG, scaled to its box so it reads at phone width) with the same facts as text lists
//! beside it, which are what assistive technology and the keyboard use.

use leptos::prelude::*;

use crate::counts::counted;
use crate::resources::{GraphEntity, GraphRelation};

/// The most entities drawn (the most mentioned); the lists show more.
const DRAWN_ENTITIES: usize = 12;
/// The most entities and relations each list shows.
const LISTED: usize = 50;
/// The drawing's coordinate box (a square) and the radius of the circle of entities.
const SIZE: f64 = 360.0;
const RADIUS: f64 = 120.0;
/// Room left and right of the box for the labels of the entities on the sides.
const LABEL_ROOM: f64 = 110.0;

/// An entity's place in the drawing.
#[derive(Debug, Clone, PartialEq)]
struct Node {
    name: String,
    x: f64,
    y: f64,
    /// The circle's radius, from the entity's share of mentions.
    r: f64,
    /// Where its label goes, outside the circle of entities.
    label_x: f64,
    label_y: f64,
    anchor: &'static str,
}

/// A relation's line.
#[derive(Debug, Clone, PartialEq)]
struct Edge {
    from: (f64, f64),
    to: (f64, f64),
    width: f64,
}

/// Places the most mentioned entities evenly on a circle, and a line for each relation
/// between two of them, thicker the more sentences name both.
fn layout(entities: &[GraphEntity], relations: &[GraphRelation]) -> (Vec<Node>, Vec<Edge>) {
    let drawn = &entities[..entities.len().min(DRAWN_ENTITIES)];
    let most_mentions = drawn
        .iter()
        .map(|entity| entity.mentions)
        .max()
        .unwrap_or(1)
        .max(1);
    let center = SIZE / 2.0;
    let nodes: Vec<Node> = drawn
        .iter()
        .enumerate()
        .map(|(index, entity)| {
            let angle = std::f64::consts::TAU * index as f64 / drawn.len() as f64
                - std::f64::consts::FRAC_PI_2;
            let (sin, cos) = angle.sin_cos();
            let share = entity.mentions as f64 / most_mentions as f64;
            Node {
                name: entity.name.clone(),
                x: center + RADIUS * cos,
                y: center + RADIUS * sin,
                r: 6.0 + 8.0 * share,
                label_x: center + (RADIUS + 22.0) * cos,
                label_y: center + (RADIUS + 22.0) * sin + 4.0,
                anchor: if cos > 0.3 {
                    "start"
                } else if cos < -0.3 {
                    "end"
                } else {
                    "middle"
                },
            }
        })
        .collect();
    let place = |name: &str| {
        nodes
            .iter()
            .find(|node| node.name == name)
            .map(|node| (node.x, node.y))
    };
    let strongest = relations
        .iter()
        .map(|relation| relation.weight)
        .max()
        .unwrap_or(1)
        .max(1);
    let edges = relations
        .iter()
        .filter_map(|relation| {
            Some(Edge {
                from: place(&relation.source)?,
                to: place(&relation.target)?,
                width: 1.0 + 4.0 * relation.weight as f64 / strongest as f64,
            })
        })
        .collect();
    (nodes, edges)
}

/// The graph and its lists; empty until extraction found something.
#[component]
pub fn EntityGraph(
    /// Most mentioned first.
    entities: Signal<Vec<GraphEntity>>,
    /// Strongest first.
    relations: Signal<Vec<GraphRelation>>,
) -> impl IntoView {
    let drawing = Memo::new(move |_| {
        entities.with(|entities| relations.with(|relations| layout(entities, relations)))
    });
    let summary = move || {
        format!(
            "Graph of the {} most mentioned entities and the relations between them",
            drawing.with(|(nodes, _)| nodes.len())
        )
    };
    view! {
        <Show when=move || !entities.with(Vec::is_empty)>
            <figure class="entity-graph" data-testid="entity-graph">
                <svg
                    viewBox=format!("{} 0 {} {SIZE}", -LABEL_ROOM, SIZE + 2.0 * LABEL_ROOM)
                    role="img"
                    aria-labelledby="entity-graph-title"
                >
                    <title id="entity-graph-title">{summary}</title>
                    {move || {
                        drawing
                            .with(|(_, edges)| edges.clone())
                            .into_iter()
                            .map(|edge| {
                                view! {
                                    <line
                                        class="graph-edge"
                                        x1=edge.from.0
                                        y1=edge.from.1
                                        x2=edge.to.0
                                        y2=edge.to.1
                                        stroke-width=edge.width
                                    />
                                }
                            })
                            .collect_view()
                    }}
                    {move || {
                        drawing
                            .with(|(nodes, _)| nodes.clone())
                            .into_iter()
                            .map(|node| {
                                view! {
                                    <g class="graph-node" data-testid="graph-node">
                                        <circle cx=node.x cy=node.y r=node.r />
                                        <text x=node.label_x y=node.label_y text-anchor=node.anchor>
                                            {node.name}
                                        </text>
                                    </g>
                                }
                            })
                            .collect_view()
                    }}
                </svg>
            </figure>
        </Show>
        <div class="graph-lists">
            <div>
                <h3>"Entities"</h3>
                <ul data-testid="entity-list">
                    {move || {
                        entities
                            .with(|entities| entities.iter().take(LISTED).cloned().collect::<Vec<_>>())
                            .into_iter()
                            .map(|entity| {
                                view! {
                                    <li>
                                        {entity.name}
                                        <span class="muted">{format!(" · {}", counted(entity.mentions, "mention", "mentions"))}</span>
                                    </li>
                                }
                            })
                            .collect_view()
                    }}
                </ul>
                {move || more(entities.with(Vec::len))}
            </div>
            <div>
                <h3>"Relations"</h3>
                <ul data-testid="relation-list">
                    {move || {
                        relations
                            .with(|relations| relations.iter().take(LISTED).cloned().collect::<Vec<_>>())
                            .into_iter()
                            .map(|relation| {
                                view! {
                                    <li>
                                        {format!("{} – {}", relation.source, relation.target)}
                                        <span class="muted">{format!(" · {}", counted(relation.weight, "sentence", "sentences"))}</span>
                                    </li>
                                }
                            })
                            .collect_view()
                    }}
                </ul>
                {move || more(relations.with(Vec::len))}
            </div>
        </div>
    }
}

/// "and N more" under a list cut at [`LISTED`].
fn more(total: usize) -> Option<impl IntoView> {
    (total > LISTED)
        .then(|| view! { <p class="muted">{format!("and {} more", total - LISTED)}</p> })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(name: &str, mentions: u64) -> GraphEntity {
        GraphEntity {
            name: name.to_owned(),
            mentions,
        }
    }

    #[test]
    fn the_most_mentioned_entities_are_drawn_on_a_circle_with_the_relations_between_them() {
        let entities: Vec<GraphEntity> = (0..20)
            .map(|index| entity(&format!("E{index}"), 20 - index))
            .collect();
        let relations = vec![
            GraphRelation {
                source: "E0".to_owned(),
                target: "E1".to_owned(),
                weight: 4,
            },
            GraphRelation {
                source: "E0".to_owned(),
                target: "E19".to_owned(),
                weight: 2,
            },
        ];

        let (nodes, edges) = layout(&entities, &relations);

        assert_eq!(nodes.len(), DRAWN_ENTITIES);
        for node in &nodes {
            let distance = ((node.x - SIZE / 2.0).powi(2) + (node.y - SIZE / 2.0).powi(2)).sqrt();
            assert!((distance - RADIUS).abs() < 1e-9, "{node:?}");
            assert!(node.label_x >= 0.0 && node.label_x <= SIZE, "{node:?}");
        }
        assert!(nodes[0].r > nodes[11].r, "more mentions, a larger circle");
        assert_eq!(edges.len(), 1, "E19 is not drawn, nor its relation");
        assert_eq!(edges[0].from, (nodes[0].x, nodes[0].y));
        assert_eq!(edges[0].width, 5.0);
    }

    #[test]
    fn nothing_found_draws_nothing() {
        assert_eq!(layout(&[], &[]), (Vec::new(), Vec::new()));
    }
}
