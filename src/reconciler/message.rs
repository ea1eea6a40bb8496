//! The pointer commit's message: a title a log reader can scan, the dataset
//! change a reviewer needs, and trailers that mark the commit as cairn's (the
//! service uses `Cairn-Run:` to ignore its own pushes; `Cairn-Pipeline:`
//! lets a newer run of the same pipeline build over it).

use crate::config::Pipeline;
use crate::dvc::Output;

pub fn commit_message(
    pipeline: &Pipeline,
    old: Option<&Output>,
    new: &Output,
    run_id: &str,
    source: &str,
) -> String {
    let short = |o: &Output| o.id.to_string().chars().take(8).collect::<String>();
    let title = match old {
        Some(old) => format!(
            "{}: update dataset {} -> {}",
            pipeline.name.as_str(),
            short(old),
            short(new)
        ),
        None => format!(
            "{}: first dataset version {}",
            pipeline.name.as_str(),
            short(new)
        ),
    };
    let field = |o: Option<&Output>, f: fn(&Output) -> Option<String>| {
        o.and_then(f).unwrap_or_else(|| "none".to_string())
    };
    let md5 = |o: &Output| Some(o.id.to_string());
    let size = |o: &Output| o.size.map(|s| format!("{s} bytes"));
    let files = |o: &Output| o.nfiles.map(|n| n.to_string());
    let mut body = format!(
        "Pipeline {} wrote a new version of {}.\n\n  md5:   {} -> {}\n  size:  {} -> {}\n",
        pipeline.name.as_str(),
        pipeline.dataset.as_str(),
        field(old, md5),
        field(Some(new), md5),
        field(old, size),
        field(Some(new), size),
    );
    if new.nfiles.is_some() {
        body.push_str(&format!(
            "  files: {} -> {}\n",
            field(old, files),
            field(Some(new), files)
        ));
    }
    format!(
        "{title}\n\n{body}\n{} {run_id}\n{} {}\nCairn-Source: {source}\n",
        crate::forge::RUN_TRAILER,
        crate::forge::PIPELINE_TRAILER,
        pipeline.name.as_str(),
    )
}
