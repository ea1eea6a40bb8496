//! Whole-file tests: what users write in, model or diagnostics out.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{TimeZone, Utc};

use super::*;

const FILE: &str = "pipelines.toml";

/// The example from issue 2, comments and all.
const EXAMPLE: &str = r#"[defaults]
image = "python:3.12-slim"        # used on Kubernetes; ignored by the local executor
merge = "review"                  # review | auto | direct

[pipelines.employee_attrition]
dataset = "datasets/employee_attrition.csv"   # file or directory; pointer is <dataset>.dvc
schedule = "0 2 * * *"            # optional cron, with optional timezone = "Europe/Paris"
on_push = { branches = ["main"], paths = ["etl/**"] }   # optional
merge = "auto"
concurrency = "queue"             # forbid | replace | queue
timeout = "30m"

[pipelines.employee_attrition.tasks.modify_data]
command = ["python3", "etl/modify_data.py"]
needs = []                        # names of tasks in the same pipeline
env = { ROWS = "1" }
retries = 2
timeout = "10m"
# image, resources = { cpu = "500m", memory = "1Gi", gpu = 1 }, env_from = ["secret-name"], ... for Kubernetes
"#;

fn headlines(source: &str) -> Vec<String> {
    match parse(source, FILE) {
        Ok(_) => vec![],
        Err(d) => d.iter().map(Diagnostic::headline).collect(),
    }
}

fn task_name(s: &str) -> TaskName {
    TaskName::new(s).unwrap()
}

#[test]
fn issue_example_yields_exactly_the_expected_model() {
    let config = parse(EXAMPLE, FILE).unwrap();
    let modify_data = Task {
        name: task_name("modify_data"),
        command: vec!["python3".into(), "etl/modify_data.py".into()],
        needs: vec![],
        env: BTreeMap::from([("ROWS".to_string(), "1".to_string())]),
        retries: 2,
        timeout: Some(Duration::from_secs(600)),
        image: None,
        resources: Resources::default(),
        env_from: vec![],
        node_selector: BTreeMap::new(),
        tolerations: vec![],
        service_account: None,
        image_pull_secrets: vec![],
        workdir: None,
    };
    let name = PipelineName::new("employee_attrition").unwrap();
    let mut pipeline = Pipeline {
        name: name.clone(),
        dataset: DatasetPath::new("datasets/employee_attrition.csv").unwrap(),
        schedule: Some(Schedule::new("0 2 * * *", chrono_tz::UTC).unwrap()),
        catchup: Catchup::Latest,
        on_push: Some(OnPush::new(&["main"], &["etl/**"]).unwrap()),
        merge: MergePolicy::Auto,
        concurrency: Concurrency::Queue,
        timeout: Some(Duration::from_secs(1800)),
        remote: None,
        image: Some("python:3.12-slim".into()),
        tasks: Dag::new([modify_data]).unwrap(),
        digest: String::new(),
    };
    pipeline.digest = digest::pipeline_digest(&pipeline);
    let expected = Config {
        defaults: Defaults {
            image: Some("python:3.12-slim".into()),
            merge: MergePolicy::Review,
            concurrency: Concurrency::Queue,
            timeout: None,
            retries: 0,
            task_timeout: None,
            remote: None,
        },
        pipelines: BTreeMap::from([(name, pipeline)]),
    };
    assert_eq!(config, expected);

    let p = config.pipeline("employee_attrition").unwrap();
    // A snapshot: the digest must not drift between builds or versions.
    assert_eq!(p.digest, "74bdff6505a3943f37d3889d74625b46");
    assert_eq!(
        p.dataset.pointer_path(),
        "datasets/employee_attrition.csv.dvc"
    );
    assert_eq!(p.tasks.order(), [task_name("modify_data")]);
    let task = p.tasks.get(&task_name("modify_data"));
    assert_eq!(p.image_for(task), Some("python:3.12-slim"));
    assert!(p.on_push.as_ref().unwrap().matches_branch("main", "main"));
}

#[test]
fn defaults_fill_what_pipelines_and_tasks_leave_out() {
    let src = r#"
[defaults]
merge = "direct"
concurrency = "forbid"
timeout = "1h"
retries = 3
task_timeout = "5m"
remote = "backup"

[pipelines.p]
dataset = "data/"
[pipelines.p.tasks.a]
command = ["true"]
workdir = "./etl/"
[pipelines.p.tasks.b]
command = ["true"]
retries = 0
timeout = "1m"
image = "alpine"
workdir = "."

[pipelines.q]
dataset = "other"
merge = "review"
remote = "main-remote"
image = "debian"
tasks.only.command = ["x"]
"#;
    let config = parse(src, FILE).unwrap();
    let p = config.pipeline("p").unwrap();
    assert_eq!(p.dataset.as_str(), "data");
    assert_eq!(
        (p.merge, p.concurrency),
        (MergePolicy::Direct, Concurrency::Forbid)
    );
    assert_eq!(p.timeout, Some(Duration::from_secs(3600)));
    assert_eq!(p.remote.as_deref(), Some("backup"));
    assert_eq!(
        (p.image.as_deref(), p.schedule.as_ref(), p.on_push.as_ref()),
        (None, None, None)
    );
    let a = p.tasks.get(&task_name("a"));
    assert_eq!((a.retries, a.timeout), (3, Some(Duration::from_secs(300))));
    assert_eq!(a.workdir.as_deref(), Some("etl"));
    let b = p.tasks.get(&task_name("b"));
    assert_eq!((b.retries, b.timeout), (0, Some(Duration::from_secs(60))));
    assert_eq!(
        (p.image_for(b), b.workdir.as_deref()),
        (Some("alpine"), None)
    );
    let q = config.pipeline("q").unwrap();
    assert_eq!(q.merge, MergePolicy::Review);
    assert_eq!(q.remote.as_deref(), Some("main-remote"));
    assert_eq!(q.image.as_deref(), Some("debian"));
    assert_eq!(q.tasks.len(), 1);
}

#[test]
fn kubernetes_fields_are_read() {
    let src = r#"
[pipelines.p]
dataset = "d"
[pipelines.p.tasks.train]
command = ["python3", "train.py"]
resources = { cpu = "500m", memory = "1Gi", gpu = 1 }
env_from = ["secret-name", "config.v1"]
node_selector = { "kubernetes.io/arch" = "amd64" }
tolerations = [{ key = "nvidia.com/gpu", operator = "Exists", effect = "NoSchedule" }]
service_account = "trainer"
image_pull_secrets = ["regcred"]
"#;
    let config = parse(src, FILE).unwrap();
    let t = config
        .pipeline("p")
        .unwrap()
        .tasks
        .get(&task_name("train"))
        .clone();
    assert_eq!(
        t.resources,
        Resources {
            cpu: Some("500m".into()),
            memory: Some("1Gi".into()),
            gpu: Some(1)
        }
    );
    assert_eq!(t.env_from, ["secret-name", "config.v1"]);
    assert_eq!(t.node_selector["kubernetes.io/arch"], "amd64");
    assert_eq!(t.service_account.as_deref(), Some("trainer"));
    assert_eq!(t.image_pull_secrets, ["regcred"]);
    assert_eq!(
        t.tolerations,
        [crate::config::Toleration {
            key: Some("nvidia.com/gpu".into()),
            operator: Some("Exists".into()),
            value: None,
            effect: Some("NoSchedule".into()),
        }]
    );
}

#[test]
fn tolerations_are_checked_as_kubernetes_would() {
    let src = r#"
[pipelines.p]
dataset = "d"
[pipelines.p.tasks.train]
command = ["true"]
tolerations = [
  { key = "gpu", operator = "Exists", value = "yes" },
  { key = "gpu", operator = "Equals" },
  { effect = "NoSchedul" },
  { key = "gpu", value = "a100", efect = "NoSchedule" },
]
"#;
    let errors = parse(src, FILE).unwrap_err().to_string();
    assert!(
        errors.contains("value must be empty when operator is \"Exists\""),
        "{errors}"
    );
    assert!(
        errors.contains("\"Equals\" is not a toleration operator"),
        "{errors}"
    );
    assert!(
        errors.contains("\"NoSchedul\" is not a taint effect"),
        "{errors}"
    );
    assert!(
        errors.contains("unknown key `efect` in a toleration (did you mean `effect`?)"),
        "{errors}"
    );
}

#[test]
fn empty_file_is_an_empty_config() {
    let config = parse("", FILE).unwrap();
    assert!(config.pipelines.is_empty());
    assert_eq!(config.defaults, Defaults::default());
}

/// One case per kind of problem: the source and the exact headline(s).
#[test]
fn each_error_kind_has_its_exact_headline() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "syntax error",
            "[pipelines.p]\ndataset = \"d\nx = 1\n",
            &["pipelines.toml:2:13: invalid TOML: invalid character in string: `\\n`"],
        ),
        (
            "duplicate key",
            "[pipelines.p]\ndataset = \"a\"\ndataset = \"b\"\n",
            &["pipelines.toml:3:1: invalid TOML: duplicate key `dataset` (first defined on line 2)"],
        ),
        (
            "duplicate table",
            "[pipelines.p]\n[pipelines.p]\n",
            &["pipelines.toml:2:1: invalid TOML: table [pipelines.p] is defined twice (first on line 1)"],
        ),
        (
            "unknown key, near miss",
            "[pipelines.p]\ndataset = \"d\"\n[pipelines.p.tasks.t]\ncommand = [\"x\"]\nimgae = \"alpine\"\n",
            &["pipelines.toml:5:1: unknown key `imgae` in task \"t\" (did you mean `image`?)"],
        ),
        (
            "unknown key, task key on a pipeline",
            "[pipelines.p]\ndataset = \"d\"\ncommand = [\"x\"]\ntasks.t.command = [\"x\"]\n",
            &["pipelines.toml:3:1: unknown key `command` in pipeline \"p\" (`command` is a task key: put it under [pipelines.p.tasks.<task>])"],
        ),
        (
            "unknown key, pipeline key on a task",
            "[pipelines.p]\ndataset = \"d\"\n[pipelines.p.tasks.t]\ncommand = [\"x\"]\nschedule = \"@daily\"\n",
            &["pipelines.toml:5:1: unknown key `schedule` in task \"t\" (`schedule` is a pipeline key, not a task key)"],
        ),
        (
            "unknown key, top level",
            "[pipeline.p]\ndataset = \"d\"\n",
            &["pipelines.toml:1:2: unknown key `pipeline` in the file (did you mean `pipelines`?)"],
        ),
        (
            "unknown key, defaults",
            "[defaults]\ntask_timout = \"1m\"\nfoo = 1\n",
            &[
                "pipelines.toml:2:1: unknown key `task_timout` in [defaults] (did you mean `task_timeout`?)",
                "pipelines.toml:3:1: unknown key `foo` in [defaults]",
            ],
        ),
        (
            "wrong type",
            "[pipelines.p]\ndataset = 5\ntasks.t.command = [\"x\"]\n",
            &["pipelines.toml:2:11: `dataset`: expected a string, found an integer"],
        ),
        (
            "wrong type, command as a string",
            "[pipelines.p]\ndataset = \"d\"\ntasks.t.command = \"python3 x.py\"\n",
            &["pipelines.toml:3:19: `command`: expected an array of strings such as [\"python3\", \"etl/run.py\"], found a string"],
        ),
        (
            "wrong type, array element",
            "[pipelines.p]\ndataset = \"d\"\ntasks.t.command = [\"x\", 1]\n",
            &["pipelines.toml:3:25: `command`: expected a string, found an integer"],
        ),
        (
            "wrong type, env value",
            "[pipelines.p]\ndataset = \"d\"\ntasks.t.command = [\"x\"]\ntasks.t.env = { ROWS = 1 }\n",
            &["pipelines.toml:4:24: `env.ROWS`: expected a string, found an integer"],
        ),
        (
            "missing dataset points at the header",
            "\n[pipelines.p]\ntasks.t.command = [\"x\"]\n",
            &["pipelines.toml:2:1: pipeline \"p\" is missing required key `dataset`"],
        ),
        (
            "missing tasks",
            "[pipelines.p]\ndataset = \"d\"\n",
            &["pipelines.toml:1:1: pipeline \"p\" is missing required key `tasks`"],
        ),
        (
            "missing command",
            "[pipelines.p]\ndataset = \"d\"\n[pipelines.p.tasks.t]\nneeds = []\n",
            &["pipelines.toml:3:1: task \"t\" is missing required key `command`"],
        ),
        (
            "empty tasks table",
            "[pipelines.p]\ndataset = \"d\"\ntasks = {}\n",
            &["pipelines.toml:3:1: pipeline \"p\" has no tasks"],
        ),
        (
            "needs an unknown task",
            "[pipelines.p]\ndataset = \"d\"\n[pipelines.p.tasks.pull]\ncommand = [\"x\"]\n[pipelines.p.tasks.push]\ncommand = [\"x\"]\nneeds = [\"pul\"]\n",
            &["pipelines.toml:7:10: task \"push\" needs unknown task \"pul\" (did you mean \"pull\"?)"],
        ),
        (
            "needs the same task twice",
            "[pipelines.p]\ndataset = \"d\"\ntasks.a.command = [\"x\"]\ntasks.b = { command = [\"x\"], needs = [\"a\", \"a\"] }\n",
            &["pipelines.toml:4:44: task \"b\" needs \"a\" more than once"],
        ),
        (
            "bad duration",
            "[pipelines.p]\ndataset = \"d\"\ntimeout = \"10x\"\ntasks.t.command = [\"x\"]\n",
            &["pipelines.toml:3:11: `timeout`: invalid duration \"10x\": unknown time unit \"x\", supported units: ns, us/µs, ms, sec, min, hours, days, weeks, months, years (and few variations) (examples: \"90s\", \"10m\", \"1h30m\")"],
        ),
        (
            "zero duration",
            "[defaults]\ntask_timeout = \"0s\"\n",
            &["pipelines.toml:2:16: `task_timeout` must be longer than zero"],
        ),
        (
            "duration given as a number",
            "[defaults]\ntimeout = 30\n",
            &["pipelines.toml:2:11: `timeout`: expected a duration string such as \"30m\", found an integer"],
        ),
        (
            "bad cron",
            "[pipelines.p]\ndataset = \"d\"\nschedule = \"61 * * * *\"\ntasks.t.command = [\"x\"]\n",
            &["pipelines.toml:3:12: `schedule`: invalid cron expression \"61 * * * *\": Component error: Number out of bounds."],
        ),
        (
            "cron with seconds",
            "[pipelines.p]\ndataset = \"d\"\nschedule = \"0 0 2 * * *\"\ntasks.t.command = [\"x\"]\n",
            &["pipelines.toml:3:12: `schedule`: invalid cron expression \"0 0 2 * * *\": Invalid pattern: Pattern must have 5 fields when seconds are disallowed."],
        ),
        (
            "cron that never fires",
            "[pipelines.p]\ndataset = \"d\"\nschedule = \"0 0 31 4 *\"\ntasks.t.command = [\"x\"]\n",
            &["pipelines.toml:3:12: `schedule`: cron expression \"0 0 31 4 *\" can never fire (no such date)"],
        ),
        (
            "unknown timezone",
            "[pipelines.p]\ndataset = \"d\"\nschedule = \"@daily\"\ntimezone = \"Europe/Pari\"\ntasks.t.command = [\"x\"]\n",
            &["pipelines.toml:4:12: `timezone`: unknown timezone \"Europe/Pari\" (did you mean \"Europe/Paris\"?)"],
        ),
        (
            "timezone without schedule",
            "[pipelines.p]\ndataset = \"d\"\ntimezone = \"Europe/Paris\"\ntasks.t.command = [\"x\"]\n",
            &["pipelines.toml:3:1: `timezone` is set but there is no `schedule` for it to apply to"],
        ),
        (
            "catchup without schedule",
            "[pipelines.p]\ndataset = \"d\"\ncatchup = \"all\"\ntasks.t.command = [\"x\"]\n",
            &["pipelines.toml:3:1: `catchup` is set but there is no `schedule` for it to apply to"],
        ),
        (
            "unknown catchup",
            "[pipelines.p]\ndataset = \"d\"\nschedule = \"@daily\"\ncatchup = \"lates\"\ntasks.t.command = [\"x\"]\n",
            &["pipelines.toml:4:11: `catchup`: unknown catch-up policy \"lates\" (expected one of: none, latest, all); did you mean \"latest\"?"],
        ),
        (
            "absolute dataset",
            "[pipelines.p]\ndataset = \"/data/x.csv\"\ntasks.t.command = [\"x\"]\n",
            &["pipelines.toml:2:11: `dataset`: invalid path \"/data/x.csv\": the path must be relative to the repository root, not absolute"],
        ),
        (
            "dataset escaping the repository",
            "[pipelines.p]\ndataset = \"data/../../x.csv\"\ntasks.t.command = [\"x\"]\n",
            &["pipelines.toml:2:11: `dataset`: invalid path \"data/../../x.csv\": the path may not contain \"..\""],
        ),
        (
            "dataset inside .dvc",
            "[pipelines.p]\ndataset = \".dvc/cache\"\ntasks.t.command = [\"x\"]\n",
            &["pipelines.toml:2:11: `dataset`: invalid path \".dvc/cache\": the path may not be inside .dvc/ (it belongs to git, DVC or cairn)"],
        ),
        (
            "two pipelines, one dataset",
            "[pipelines.a]\ndataset = \"d/x.csv\"\ntasks.t.command = [\"x\"]\n[pipelines.b]\ndataset = \"./d/x.csv\"\ntasks.t.command = [\"x\"]\n",
            &["pipelines.toml:5:11: dataset \"d/x.csv\" is already tracked by pipeline \"a\" (line 2)"],
        ),
        (
            "dataset nested in another",
            "[pipelines.z]\ndataset = \"a/b\"\ntasks.t.command = [\"x\"]\n[pipelines.y]\ndataset = \"a/b/c.csv\"\ntasks.t.command = [\"x\"]\n",
            &["pipelines.toml:5:11: dataset \"a/b/c.csv\" is inside dataset \"a/b\" of pipeline \"z\" (line 2); their .dvc pointers would overlap"],
        ),
        (
            "dataset containing another",
            "[pipelines.z]\ndataset = \"a/b/c.csv\"\ntasks.t.command = [\"x\"]\n[pipelines.y]\ndataset = \"a\"\ntasks.t.command = [\"x\"]\n",
            &["pipelines.toml:5:11: dataset \"a\" contains dataset \"a/b/c.csv\" of pipeline \"z\" (line 2); their .dvc pointers would overlap"],
        ),
        (
            "invalid pipeline name",
            "[pipelines.\"my pipeline\"]\ndataset = \"d\"\ntasks.t.command = [\"x\"]\n",
            &["pipelines.toml:1:12: invalid pipeline name \"my pipeline\": character ' ' is not allowed (use letters, digits, '_' and '-')"],
        ),
        (
            "invalid task name",
            "[pipelines.p]\ndataset = \"d\"\ntasks._t.command = [\"x\"]\n",
            &["pipelines.toml:3:7: invalid task name \"_t\": a name must start and end with a letter or digit"],
        ),
        (
            "invalid glob",
            "[pipelines.p]\ndataset = \"d\"\non_push = { paths = [\"etl/[\"] }\ntasks.t.command = [\"x\"]\n",
            &["pipelines.toml:3:22: `on_push.paths`: invalid glob \"etl/[\": unclosed character class; missing ']'"],
        ),
        (
            "empty branch list",
            "[pipelines.p]\ndataset = \"d\"\non_push = { branches = [] }\ntasks.t.command = [\"x\"]\n",
            &["pipelines.toml:3:24: `on_push.branches` is empty: leave it out to mean the default branch"],
        ),
        (
            "a ref instead of a branch",
            "[pipelines.p]\ndataset = \"d\"\non_push.branches = [\"refs/heads/main\"]\ntasks.t.command = [\"x\"]\n",
            &["pipelines.toml:3:21: `on_push.branches`: write a branch name such as \"main\", not a ref"],
        ),
        (
            "unknown merge policy",
            "[defaults]\nmerge = \"autoo\"\n",
            &["pipelines.toml:2:9: `merge`: unknown merge policy \"autoo\" (expected one of: review, auto, direct); did you mean \"auto\"?"],
        ),
        (
            "unknown concurrency policy",
            "[defaults]\nconcurrency = \"parallel\"\n",
            &["pipelines.toml:2:15: `concurrency`: unknown concurrency policy \"parallel\" (expected one of: forbid, replace, queue)"],
        ),
        (
            "reserved and invalid env names",
            "[pipelines.p]\ndataset = \"d\"\ntasks.t.command = [\"x\"]\ntasks.t.env = { CAIRN_RUN_ID = \"1\", \"A-B\" = \"2\" }\n",
            &[
                "pipelines.toml:4:17: `env`: \"CAIRN_RUN_ID\" uses the reserved CAIRN_ prefix (cairn sets CAIRN_WORKSPACE, CAIRN_DATASET, CAIRN_RUN_ID and CAIRN_PIPELINE itself)",
                "pipelines.toml:4:37: `env`: \"A-B\" is not a valid environment variable name (use [A-Za-z_][A-Za-z0-9_]*)",
            ],
        ),
        (
            "negative retries",
            "[defaults]\nretries = -1\n",
            &["pipelines.toml:2:11: `retries` cannot be negative"],
        ),
        (
            "bad quantities",
            "[pipelines.p]\ndataset = \"d\"\n[pipelines.p.tasks.t]\ncommand = [\"x\"]\nresources = { cpu = \"1 core\", memory = \"512m\", gpus = 1 }\n",
            &[
                "pipelines.toml:5:21: `cpu`: \"1 core\" is not a Kubernetes quantity (examples: \"500m\", \"2\", \"1Gi\", \"512Mi\")",
                "pipelines.toml:5:40: `memory`: \"512m\" means 512 thousandths of a byte; did you mean \"512Mi\"?",
                "pipelines.toml:5:48: unknown key `gpus` in `resources` (did you mean `gpu`?)",
            ],
        ),
        (
            "bad Kubernetes object name",
            "[pipelines.p]\ndataset = \"d\"\ntasks.t.command = [\"x\"]\ntasks.t.env_from = [\"My_Secret\"]\n",
            &["pipelines.toml:4:21: `env_from`: \"My_Secret\" is not a valid Kubernetes object name (lowercase letters, digits, '-' and '.', starting and ending with a letter or digit)"],
        ),
        (
            "empty command",
            "[pipelines.p]\ndataset = \"d\"\ntasks.t.command = []\n",
            &["pipelines.toml:3:19: `command` cannot be empty"],
        ),
        (
            "workdir escaping the workspace",
            "[pipelines.p]\ndataset = \"d\"\ntasks.t.command = [\"x\"]\ntasks.t.workdir = \"../x\"\n",
            &["pipelines.toml:4:19: `workdir`: invalid path \"../x\": the path may not contain \"..\" (it is relative to the run's workspace)"],
        ),
        (
            "pipelines is not a table",
            "pipelines = [\"a\"]\n",
            &["pipelines.toml:1:13: `pipelines`: expected a table, found an array"],
        ),
    ];
    let mut failures = Vec::new();
    for (what, src, expected) in cases {
        let got = headlines(src);
        if got != *expected {
            failures.push(format!("{what}:\n  expected {expected:#?}\n  got {got:#?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn cycles_of_length_one_to_three_are_reported_with_their_path() {
    let src = r#"[pipelines.p]
dataset = "d"
[pipelines.p.tasks.self]
command = ["x"]
needs = ["self"]
[pipelines.p.tasks.b]
command = ["x"]
needs = ["a"]
[pipelines.p.tasks.a]
command = ["x"]
needs = ["b"]
[pipelines.p.tasks.z]
command = ["x"]
needs = ["x"]
[pipelines.p.tasks.y]
command = ["x"]
needs = ["z"]
[pipelines.p.tasks.x]
command = ["x"]
needs = ["y", "a"]
"#;
    assert_eq!(
        headlines(src),
        [
            "pipelines.toml:5:10: dependency cycle: self -> self (a task cannot need itself)",
            "pipelines.toml:11:10: dependency cycle: a -> b -> a",
            "pipelines.toml:20:10: dependency cycle: x -> y -> z -> x",
        ]
    );
}

#[test]
fn all_errors_are_reported_in_source_order() {
    // Four different problems, written so that the order in which the walker
    // meets them (tasks before datasets, keys in name order) differs from the
    // order in the file.
    let src = r#"[pipelines.p]
timeout = "soon"
dataset = "/abs"
[pipelines.p.tasks.zz]
command = ["x"]
needs = ["nope"]
[pipelines.p.tasks.aa]
command = ["x"]
colour = "red"
"#;
    let errors = parse(src, FILE).unwrap_err();
    assert_eq!(errors.len(), 4);
    let got: Vec<String> = errors.iter().map(Diagnostic::headline).collect();
    assert_eq!(
        got,
        [
            "pipelines.toml:2:11: `timeout`: invalid duration \"soon\": expected number at 0 (examples: \"90s\", \"10m\", \"1h30m\")",
            "pipelines.toml:3:11: `dataset`: invalid path \"/abs\": the path must be relative to the repository root, not absolute",
            "pipelines.toml:6:10: task \"zz\" needs unknown task \"nope\"",
            "pipelines.toml:9:1: unknown key `colour` in task \"aa\"",
        ]
    );
}

#[test]
fn rendered_diagnostic_snapshot() {
    let src = "[pipelines.p]\ndataset = \"d\"\n[pipelines.p.tasks.pull]\ncommand = [\"x\"]\n\n\n\n\n[pipelines.p.tasks.push]\ncommand = [\"x\"]\nneeds = [\"pul\"]\n";
    let errors = parse(src, FILE).unwrap_err();
    assert_eq!(
        errors.to_string(),
        r#"pipelines.toml:11:10: task "push" needs unknown task "pul" (did you mean "pull"?)
   |
11 | needs = ["pul"]
   |          ^^^^^"#
    );
    // Several diagnostics are separated by a blank line.
    let two = parse("a = 1\nb = 2\n", FILE).unwrap_err().to_string();
    assert_eq!(
        two,
        "pipelines.toml:1:1: unknown key `a` in the file\n  |\n1 | a = 1\n  | ^\n\n\
         pipelines.toml:2:1: unknown key `b` in the file\n  |\n2 | b = 2\n  | ^"
    );
}

#[test]
fn crlf_files_and_wide_characters_get_character_columns() {
    let src =
        "[pipelines.p]\r\ndataset = \"données\" \r\nimage = 3\r\ntasks.t.command = [\"x\"]\r\n";
    let errors = parse(src, FILE).unwrap_err();
    let d = errors.iter().next().unwrap();
    assert_eq!(
        d.headline(),
        "pipelines.toml:3:9: `image`: expected a string, found an integer"
    );
    assert!(
        d.to_string().ends_with("3 | image = 3\n  |         ^"),
        "{d}"
    );

    let src = "[pipelines.\"é\"]\r\ndataset = \"d\"\r\ntasks.t.command = [\"x\"]\r\n";
    assert_eq!(
        headlines(src),
        ["pipelines.toml:1:12: invalid pipeline name \"é\": character 'é' is not allowed (use letters, digits, '_' and '-')"]
    );
    // Three two-byte characters before the span: 28 characters, 31 bytes.
    let src = "[pipelines.p]\r\ndataset = \"d\"\r\ntasks.t.command = [\"x\"]\r\ntasks.t.env = { X = \"ééé\", \"A-B\" = \"2\" }\r\n";
    assert_eq!(
        headlines(src),
        ["pipelines.toml:4:28: `env`: \"A-B\" is not a valid environment variable name (use [A-Za-z_][A-Za-z0-9_]*)"]
    );
}

#[test]
fn missing_keys_in_inline_and_dotted_tables_point_at_the_name() {
    let src = "[pipelines]\np = { tasks = { t = { needs = [] } } }\n";
    assert_eq!(
        headlines(src),
        [
            "pipelines.toml:2:1: pipeline \"p\" is missing required key `dataset`",
            "pipelines.toml:2:17: task \"t\" is missing required key `command`",
        ]
    );
}

#[test]
fn cron_macros_through_the_file() {
    for expr in [
        "@daily",
        "@hourly",
        "@weekly",
        "@monthly",
        "@yearly",
        "*/5 * * * *",
    ] {
        let src = format!(
            "[pipelines.p]\ndataset = \"d\"\nschedule = \"{expr}\"\ntasks.t.command = [\"x\"]\n"
        );
        let config = parse(&src, FILE).unwrap_or_else(|e| panic!("{expr}: {e}"));
        let s = config.pipeline("p").unwrap().schedule.as_ref().unwrap();
        assert_eq!((s.expr(), s.timezone()), (expr, chrono_tz::UTC));
    }
    let src =
        "[pipelines.p]\ndataset = \"d\"\nschedule = \"*/5 * * * * *\"\ntasks.t.command = [\"x\"]\n";
    assert!(parse(src, FILE).is_err());
}

#[test]
fn schedule_in_a_timezone_through_the_file() {
    let src = "[pipelines.p]\ndataset = \"d\"\nschedule = \"30 2 * * *\"\ntimezone = \"Europe/Paris\"\ntasks.t.command = [\"x\"]\n";
    let config = parse(src, FILE).unwrap();
    let s = config.pipeline("p").unwrap().schedule.clone().unwrap();
    assert_eq!(s.timezone(), chrono_tz::Europe::Paris);
    // Spring forward: 02:30 does not exist on 2025-03-30; croner fires at 03:00 CEST.
    let after = Utc.with_ymd_and_hms(2025, 3, 29, 23, 0, 0).unwrap();
    assert_eq!(
        s.next_after(after),
        Some(Utc.with_ymd_and_hms(2025, 3, 30, 1, 0, 0).unwrap())
    );
}

#[test]
fn catchup_defaults_to_latest_and_keeps_old_digests() {
    let base = "[pipelines.p]\ndataset = \"d\"\nschedule = \"@daily\"\ntasks.t.command = [\"x\"]\n";
    let plain = parse(base, FILE).unwrap();
    assert_eq!(plain.pipeline("p").unwrap().catchup, Catchup::Latest);
    let explicit = parse(
        &base.replace("@daily\"\n", "@daily\"\ncatchup = \"latest\"\n"),
        FILE,
    )
    .unwrap();
    assert_eq!(
        explicit.pipeline("p").unwrap().digest,
        plain.pipeline("p").unwrap().digest
    );
    let all = parse(
        &base.replace("@daily\"\n", "@daily\"\ncatchup = \"all\"\n"),
        FILE,
    )
    .unwrap();
    assert_eq!(all.pipeline("p").unwrap().catchup, Catchup::All);
    assert_ne!(
        all.pipeline("p").unwrap().digest,
        plain.pipeline("p").unwrap().digest
    );
}

#[test]
fn task_order_is_deterministic_whatever_the_file_order() {
    let src = r#"[pipelines.p]
dataset = "d"
[pipelines.p.tasks.publish]
command = ["x"]
needs = ["validate", "train"]
[pipelines.p.tasks.train]
command = ["x"]
needs = ["fetch"]
[pipelines.p.tasks.validate]
command = ["x"]
needs = ["fetch"]
[pipelines.p.tasks.fetch]
command = ["x"]
[pipelines.p.tasks.docs]
command = ["x"]
"#;
    let config = parse(src, FILE).unwrap();
    let dag = &config.pipeline("p").unwrap().tasks;
    let order: Vec<&str> = dag.order().iter().map(TaskName::as_str).collect();
    assert_eq!(order, ["docs", "fetch", "train", "validate", "publish"]);
    assert_eq!(
        dag.dependents(&task_name("fetch")),
        [task_name("train"), task_name("validate")]
    );
    // Needs keep the order they were written in.
    assert_eq!(
        dag.get(&task_name("publish")).needs,
        [task_name("validate"), task_name("train")]
    );
}

#[test]
fn digest_tracks_the_pipelines_own_effective_definition() {
    let base = "[defaults]\nimage = \"a\"\n[pipelines.p]\ndataset = \"d\"\ntasks.t.command = [\"x\"]\n[pipelines.q]\ndataset = \"e\"\ntasks.t.command = [\"x\"]\n";
    let digest = |src: &str, name: &str| {
        parse(src, FILE)
            .unwrap()
            .pipeline(name)
            .unwrap()
            .digest
            .clone()
    };
    let p = digest(base, "p");
    assert_eq!(p.len(), 32);
    assert!(p.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(p, digest(base, "p"), "stable across parses");
    // Comments, layout and other pipelines don't matter.
    let reformatted = "# hi\n[defaults]\nimage=\"a\"\n[pipelines.q]\ndataset = \"e\"\ntasks.t.command = [\"x\", \"y\"]\n[pipelines.p]\ntasks = { t = { command = [\"x\"] } }\ndataset = \"./d\"\n";
    assert_eq!(p, digest(reformatted, "p"));
    assert_ne!(digest(base, "q"), digest(reformatted, "q"));
    // Its own definition, including what it inherits, does.
    assert_ne!(
        p,
        digest(&base.replace("image = \"a\"", "image = \"b\""), "p")
    );
    assert_ne!(
        p,
        digest(&base.replace("dataset = \"d\"", "dataset = \"d2\""), "p")
    );
    let explicit = base.replace("dataset = \"d\"\n", "dataset = \"d\"\nmerge = \"review\"\n");
    assert_eq!(
        p,
        digest(&explicit, "p"),
        "writing a default explicitly changes nothing"
    );
}

#[test]
fn enums_parse_and_display_like_the_file() {
    for m in MergePolicy::ALL {
        assert_eq!(m.to_string().parse::<MergePolicy>(), Ok(*m));
    }
    for c in Concurrency::ALL {
        assert_eq!(c.as_str().parse::<Concurrency>(), Ok(*c));
    }
    assert_eq!(
        serde_json::to_string(&MergePolicy::Auto).unwrap(),
        "\"auto\""
    );
    assert_eq!(
        serde_json::from_str::<Concurrency>("\"replace\"").unwrap(),
        Concurrency::Replace
    );
    assert_eq!(MergePolicy::default(), MergePolicy::Review);
    assert_eq!(Concurrency::default(), Concurrency::Queue);
    assert_eq!(
        "Review".parse::<MergePolicy>().unwrap_err().to_string(),
        "unknown merge policy \"Review\" (expected one of: review, auto, direct)"
    );
}

#[test]
fn diagnostics_are_errors_with_headlines() {
    let errors = parse("[pipelines.p]\n", FILE).unwrap_err();
    let as_error: &dyn std::error::Error = &errors;
    assert!(as_error.to_string().starts_with("pipelines.toml:1:1: "));
    let first = errors.iter().next().unwrap();
    assert_eq!(first.file, FILE);
    assert_eq!((first.line, first.col), (1, 1));
    assert_eq!(first.span, 0..13);
    assert!(!first.headline().contains('\n'));
}

#[test]
fn one_broken_pipeline_reports_every_problem_it_has() {
    let src = "[defaults]\nmerge = \"autoo\"\n\n[pipelines.employee_attrition]\ndataset = \"../datasets/x.csv\"\nschedule = \"0 2 * *\"\ntimezone = \"Europe/Pari\"\non_push = { branches = [\"main\"], path = [\"etl/**\"] }\n\n[pipelines.employee_attrition.tasks.modify_data]\ncommand = [\"python3\", \"etl/modify_data.py\"]\nneeds = [\"modfy_data\"]\nenv = { ROWS = 1 }\nretries = -2\ntimeout = \"10 mins\"\n\t imgae = \"x\"\n";
    assert_eq!(
        headlines(src),
        [
            "pipelines.toml:2:9: `merge`: unknown merge policy \"autoo\" (expected one of: review, auto, direct); did you mean \"auto\"?",
            "pipelines.toml:5:11: `dataset`: invalid path \"../datasets/x.csv\": the path may not contain \"..\"",
            "pipelines.toml:6:12: `schedule`: invalid cron expression \"0 2 * *\": Invalid pattern: Pattern must have 5 fields when seconds are disallowed.",
            "pipelines.toml:7:12: `timezone`: unknown timezone \"Europe/Pari\" (did you mean \"Europe/Paris\"?)",
            "pipelines.toml:8:34: unknown key `path` in `on_push` (did you mean `paths`?)",
            // No "did you mean" pointing the task at itself.
            "pipelines.toml:12:10: task \"modify_data\" needs unknown task \"modfy_data\"",
            "pipelines.toml:13:16: `env.ROWS`: expected a string, found an integer",
            "pipelines.toml:14:11: `retries` cannot be negative",
            "pipelines.toml:16:3: unknown key `imgae` in task \"modify_data\" (did you mean `image`?)",
        ]
    );
}
