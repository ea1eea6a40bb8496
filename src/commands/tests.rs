use super::*;

const PIPELINES: &[&str] = &["employee_attrition", "nightly", "train"];

fn run(names: &[&str]) -> Result<Command, CommandError> {
    Ok(Command::Run {
        pipelines: names.iter().map(|n| (*n).to_owned()).collect(),
    })
}

fn unknown_command(word: &str, suggestion: Option<&str>) -> Result<Command, CommandError> {
    Err(CommandError::UnknownCommand {
        word: word.into(),
        suggestion: suggestion.map(str::to_owned),
    })
}

fn unknown_pipeline(name: &str, suggestion: Option<&str>) -> Result<Command, CommandError> {
    Err(CommandError::UnknownPipeline {
        name: name.into(),
        suggestion: suggestion.map(str::to_owned),
        known: PIPELINES.iter().map(|p| (*p).to_owned()).collect(),
    })
}

/// What a case is about, the comment, and what the parser must return.
type Case = (
    &'static str,
    &'static str,
    Vec<Result<Command, CommandError>>,
);

#[test]
fn table() {
    let cases: Vec<Case> = vec![
        ("no command", "LGTM, thanks!", vec![]),
        ("run one", "/cairn run train", vec![run(&["train"])]),
        (
            "run several, deduplicated, in order",
            "/cairn run train nightly train",
            vec![run(&["train", "nightly"])],
        ),
        (
            "several commands, one per line, with prose between",
            "Looks good.\n/cairn run nightly\nand then\n  /cairn status\r\n/cairn help",
            vec![run(&["nightly"]), Ok(Command::Status), Ok(Command::Help)],
        ),
        (
            "case of the prefix and the word does not matter",
            "/CAIRN RETRY\n/Cairn Cancel",
            vec![Ok(Command::Retry), Ok(Command::Cancel)],
        ),
        ("merge", "/cairn merge", vec![Ok(Command::Merge)]),
        (
            "a command must start its line",
            "please /cairn run train",
            vec![],
        ),
        (
            "the prefix must be a word",
            "/cairnrun train\n/cairn-run",
            vec![],
        ),
        ("empty", "/cairn", vec![Err(CommandError::Empty)]),
        (
            "empty with spaces",
            "/cairn   \t",
            vec![Err(CommandError::Empty)],
        ),
        (
            "typo in the command",
            "/cairn rnu train",
            vec![unknown_command("rnu", Some("run"))],
        ),
        (
            "typo in the command, near status",
            "/cairn stauts",
            vec![unknown_command("stauts", Some("status"))],
        ),
        (
            "unknown command, nothing near",
            "/cairn deploy",
            vec![unknown_command("deploy", None)],
        ),
        (
            "typo in a pipeline",
            "/cairn run trian",
            vec![unknown_pipeline("trian", Some("train"))],
        ),
        (
            "unknown pipeline, nothing near",
            "/cairn run everything",
            vec![unknown_pipeline("everything", None)],
        ),
        (
            "run without a pipeline",
            "/cairn run",
            vec![Err(CommandError::NoPipeline {
                known: PIPELINES.iter().map(|p| (*p).to_owned()).collect(),
            })],
        ),
        (
            "arguments where none are taken",
            "/cairn retry now",
            vec![Err(CommandError::UnexpectedArgument {
                command: "retry",
                found: "now".into(),
            })],
        ),
        (
            "fenced code blocks are ignored, both kinds, and commands after them count",
            "```\n/cairn run train\n```\n~~~~sh\n/cairn cancel\n~~~~\n/cairn status",
            vec![Ok(Command::Status)],
        ),
        (
            "a shorter fence does not close a longer one",
            "````\n```\n/cairn run train\n````\n/cairn help",
            vec![Ok(Command::Help)],
        ),
        (
            "an unclosed fence hides the rest",
            "```\n/cairn run train\n",
            vec![],
        ),
        (
            "quotes are ignored, nested too",
            "> /cairn run train\n>> /cairn cancel\n/cairn retry",
            vec![Ok(Command::Retry)],
        ),
        (
            "indented code blocks are ignored",
            "    /cairn run train\n\t/cairn cancel\n   /cairn help",
            vec![Ok(Command::Help)],
        ),
        (
            "inline code is not a command line",
            "`/cairn run train`",
            vec![],
        ),
    ];
    for (what, body, want) in cases {
        assert_eq!(parse(body, PIPELINES), want, "{what}: {body:?}");
    }
}

#[test]
fn answers_name_the_mistake_and_the_fix() {
    let text = |body: &str| parse(body, PIPELINES)[0].clone().unwrap_err().to_string();
    assert_eq!(
        text("/cairn rnu x"),
        "unknown command `rnu` (did you mean `/cairn run`?)"
    );
    assert_eq!(
        text("/cairn deploy"),
        "unknown command `deploy`; the commands are `run`, `retry`, `cancel`, `merge`, `status`, `help`"
    );
    assert_eq!(
        text("/cairn run nightyl"),
        "unknown pipeline `nightyl` (did you mean `nightly`?)"
    );
    assert_eq!(
        text("/cairn run x"),
        "unknown pipeline `x`; the pipelines are `employee_attrition`, `nightly`, `train`"
    );
    let none = parse("/cairn run", &[])[0].clone().unwrap_err().to_string();
    assert!(none.contains("declares none"), "{none}");
}

#[test]
fn hostile_comments_are_bounded() {
    // Many commands: only the first MAX_COMMANDS, then one error.
    let body = "/cairn status\n".repeat(1000);
    let got = parse(&body, PIPELINES);
    assert_eq!(got.len(), MAX_COMMANDS + 1);
    assert!(got[..MAX_COMMANDS]
        .iter()
        .all(|c| c == &Ok(Command::Status)));
    assert_eq!(got[MAX_COMMANDS], Err(CommandError::TooManyCommands));

    // One enormous line.
    let body = format!("/cairn run {}", "train ".repeat(10_000));
    assert_eq!(
        parse(&body, PIPELINES),
        vec![Err(CommandError::LineTooLong)]
    );

    // Too many pipelines on one line.
    let body = format!("/cairn run {}", "train ".repeat(MAX_PIPELINES + 1));
    assert_eq!(
        parse(&body, PIPELINES),
        vec![Err(CommandError::TooManyPipelines)]
    );

    // A comment far beyond GitHub's limit: the rest is not read, and says so.
    let mut body = "x".repeat(MAX_SCAN - 1);
    body.push_str("é/cairn run train\n"); // a multi-byte character on the cut
    body.push_str(&"y".repeat(MAX_SCAN));
    body.push_str("\n/cairn run train");
    assert_eq!(parse(&body, PIPELINES), vec![Err(CommandError::TooLong)]);

    // Echoed words cannot break out of their code span, nor be huge.
    let word = format!("`{}`", "a".repeat(500));
    let got = parse(&format!("/cairn {word}"), PIPELINES);
    let Err(CommandError::UnknownCommand { word, .. }) = &got[0] else {
        panic!("{got:?}")
    };
    assert_eq!(word.len(), 64);
    assert!(!word.contains('`'));

    // Control characters, NULs, right-to-left marks: not commands, no panic.
    for body in [
        "\0/cairn run train",
        "/cairn\0run train",
        "\u{202e}/cairn run train",
        "/cairn run tr\u{0}ain",
        "\u{feff}",
        "/cairn \u{3000}",
    ] {
        let got = parse(body, PIPELINES);
        assert!(
            got.iter().all(|c| !matches!(c, Ok(Command::Run { .. }))),
            "{body:?}: {got:?}"
        );
    }
}

#[test]
fn which_commands_start_runs() {
    assert!(Command::Retry.starts_runs());
    assert!(run(&["train"]).unwrap().starts_runs());
    for c in [
        Command::Cancel,
        Command::Merge,
        Command::Status,
        Command::Help,
    ] {
        assert!(!c.starts_runs(), "{c}");
    }
    assert!(help_text().contains("/cairn run PIPELINE"));
}
