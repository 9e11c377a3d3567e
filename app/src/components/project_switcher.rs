//! [`ProjectSwitcher`]: a labelled select of the user's projects; choosing one opens its
//! documents.

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use crate::resources::Project;

/// The select; changing it navigates to `/documents?project=<id>`.
#[component]
pub fn ProjectSwitcher(
    /// The user's projects.
    projects: Vec<Project>,
    /// The project shown now.
    current: String,
) -> impl IntoView {
    let navigate = use_navigate();
    let on_change = move |event: leptos::ev::Event| {
        let project = event_target_value(&event);
        navigate(&format!("/documents?project={project}"), Default::default());
    };
    view! {
        <div class="field inline">
            <label for="project-select">"Project"</label>
            <select id="project-select" on:change=on_change>
                {projects
                    .into_iter()
                    .map(|project| {
                        let selected = project.id == current;
                        view! {
                            <option value=project.id selected=selected>
                                {project.name}
                            </option>
                        }
                    })
                    .collect_view()}
            </select>
        </div>
    }
}
