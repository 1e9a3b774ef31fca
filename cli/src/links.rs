//! Where to look at an execution from a terminal: build id, its log (group/stream and the
//! console), the ECS services it deployed, and the commands that show more.

use shared::domain::links::{
    build_console, build_log, ecs_console, logs_console, region_of_repository,
};
use shared::domain::Execution;

static CLI_REGION: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();

/// Remember the region the CLI is configured for (links of executions without an image).
pub fn set_cli_region(region: Option<String>) {
    let _ = CLI_REGION.set(region);
}

pub fn cli_region() -> Option<&'static str> {
    CLI_REGION.get().and_then(|r| r.as_deref())
}

/// The region links are made for: the execution's image repository's, else the CLI's.
pub fn region_of(e: &Execution, cli_region: Option<&str>) -> Option<String> {
    e.image
        .as_ref()
        .and_then(|i| region_of_repository(&i.repository_uri))
        .or(cli_region)
        .map(str::to_string)
}

/// `(label, value)` lines, as far as they are known: build, logs, the console of each.
pub fn lines(e: &Execution, region: Option<&str>) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Some(id) = &e.build_id {
        out.push(("build", id.clone()));
        out.push(("logs", format!("shipgate logs {}", e.id)));
        if let Some(log) = build_log(id) {
            out.push(("log group", format!("{} stream {}", log.group, log.stream)));
            if let Some(r) = region {
                out.push(("log console", logs_console(r, &log)));
            }
        }
        if let Some(url) = region.and_then(|r| build_console(r, id)) {
            out.push(("build console", url));
        }
    }
    if let Some(link) = e.failure.as_ref().and_then(|f| f.link.as_ref()) {
        out.push(("failure log", link.clone()));
    }
    if let Some(r) = region {
        if let Some(d) = &e.test {
            out.push(("test console", ecs_console(r, &d.cluster, &d.service)));
        }
        if let Some(d) = &e.prod {
            out.push(("prod console", ecs_console(r, &d.cluster, &d.service)));
        }
    }
    if let Some(url) = &e.commit.url {
        out.push(("changes", url.clone()));
    }
    out
}
