//! Unit tests of the Dockerfile parser.
use super::*;
use Command::{Exec, Shell};
use InstructionKind as K;

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    map(items).into_iter().collect()
}

fn s(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn ok_with(text: &str, build: &[(&str, &str)]) -> Dockerfile {
    parse(text, &map(build)).unwrap_or_else(|e| panic!("{text:?} should parse: {e}"))
}

/// Kinds of the last stage's instructions.
fn kinds(text: &str) -> Vec<InstructionKind> {
    let file = ok_with(text, &[]);
    let stage = file.final_stage().expect("a stage");
    stage.instructions.iter().map(|i| i.kind.clone()).collect()
}

fn err(text: &str) -> String {
    match parse(text, &BTreeMap::new()) {
        Ok(file) => panic!("{text:?} should fail, got {file:?}"),
        Err(e) => e.to_string(),
    }
}

fn copy(sources: &[&str], dest: &str) -> InstructionKind {
    let (chown, chmod, from) = (None, None, None);
    K::Copy {
        sources: s(sources),
        dest: dest.into(),
        chown,
        chmod,
        from,
    }
}

#[test]
fn seed_dockerfile() {
    let file = ok_with(
        "FROM scratch\nADD kubia.wasm /app.wasm\nENTRYPOINT [\"/app.wasm\"]\n",
        &[],
    );
    let [stage] = file.stages.as_slice() else {
        panic!("one stage: {file:?}")
    };
    assert_eq!(
        (stage.from.as_str(), stage.line, stage.name.as_deref()),
        ("scratch", 1, None)
    );
    let [add, entrypoint] = stage.instructions.as_slice() else {
        panic!("{stage:?}")
    };
    assert_eq!(
        (add.line, add.original.as_str()),
        (2, "ADD kubia.wasm /app.wasm")
    );
    let (sources, dest) = (s(&["kubia.wasm"]), "/app.wasm".into());
    assert_eq!(
        add.kind,
        K::Add {
            sources,
            dest,
            chown: None,
            chmod: None
        }
    );
    assert_eq!(entrypoint.kind, K::Entrypoint(Exec(s(&["/app.wasm"]))));
    assert_eq!(entrypoint.line, 3);
}

#[test]
fn busybox_dockerfile_with_and_without_build_arg() {
    let text = "FROM scratch\nARG TARGET=wasip2\nCOPY ${TARGET}/ /\n\
                ENV PATH=/usr/local/bin:/usr/bin:/bin\nCMD [\"sh\"]";
    let file = ok_with(text, &[]);
    let ins = &file.stages[0].instructions;
    let target = Some("wasip2".to_string());
    assert_eq!(
        ins[0].kind,
        K::Arg {
            name: "TARGET".into(),
            default: target
        }
    );
    assert_eq!(ins[1].kind, copy(&["wasip2/"], "/"));
    assert_eq!(ins[1].original, "COPY ${TARGET}/ /");
    assert_eq!(
        ins[2].kind,
        K::Env(pairs(&[("PATH", "/usr/local/bin:/usr/bin:/bin")]))
    );
    assert_eq!(ins[3].kind, K::Cmd(Exec(s(&["sh"]))));
    let file = ok_with(text, &[("TARGET", "wasip1"), ("UNDECLARED", "x")]);
    assert_eq!(file.stages[0].instructions[1].kind, copy(&["wasip1/"], "/"));
}

#[test]
fn continuations_comments_and_blank_lines() {
    let text = "# a comment\n\n  from   scratch  \nCOPY a \\\n  b \\\n# inside\n\n   \\\n  /dst/\n\n\
                label a=1\n";
    let file = ok_with(text, &[]);
    let ins = &file.stages[0].instructions;
    assert_eq!(file.stages[0].line, 3);
    assert_eq!(
        (ins[0].line, ins[0].original.as_str()),
        (4, "COPY a   b      /dst/")
    );
    assert_eq!(ins[0].kind, copy(&["a", "b"], "/dst/"));
    assert_eq!(ins[1].line, 11);
    // A continuation running into the end of the file still ends the instruction.
    assert_eq!(kinds("FROM x\nUSER me \\"), vec![K::User("me".into())]);
    assert_eq!(
        kinds("\u{feff}FROM x\r\nUSER a \\\r\n b\r\n"),
        vec![K::User("a  b".into())]
    );
}

#[test]
fn escape_directive() {
    let text = "# syntax=docker/dockerfile:1\n#  Escape = `\nFROM scratch\nCOPY C:\\src `\n  C:\\dst\n\
                WORKDIR C:\\app\nENV A=`$HOME";
    let ks = kinds(text);
    assert_eq!(ks[0], copy(&["C:\\src"], "C:\\dst"));
    assert_eq!(ks[1], K::Workdir("C:\\app".into()));
    assert_eq!(ks[2], K::Env(pairs(&[("A", "$HOME")])));
    // After an ordinary comment, directives are plain comments.
    assert_eq!(
        kinds("# hello\n# escape=`\nFROM x\nUSER a `\n"),
        vec![K::User("a `".into())]
    );
    let e = err("# escape=x\nFROM a");
    assert_eq!(
        e,
        "Dockerfile line 1: invalid escape directive \"x\": must be \\ or `"
    );
    let e = err("# escape=`\n# escape=\\\nFROM a");
    assert_eq!(e, "Dockerfile line 2: the escape directive is given twice");
}

#[test]
fn env_and_label_forms() {
    let ks = kinds(concat!(
        "FROM x\n",
        "ENV A=1 B=\"two words\" C='$A single' D=\\$A E=$A F=${A}x G=\"q\\\"$A\\x\"\n",
        "ENV G old style  value\n",
        "ENV A=changed H=$A\n",
        "ENV I=$A\n",
        "LABEL \"com.example.key\"=\"v a\" plain=yes\n",
        "LABEL legacy some value\n",
        "MAINTAINER Jane <jane@example.com>\n",
    ));
    let first = [
        ("A", "1"),
        ("B", "two words"),
        ("C", "$A single"),
        ("D", "$A"),
    ];
    let first = [&first[..], &[("E", ""), ("F", "x"), ("G", "q\"\\x")]].concat();
    assert_eq!(ks[0], K::Env(pairs(&first)));
    assert_eq!(ks[1], K::Env(pairs(&[("G", "old style  value")])));
    // Values on one line see the variables from before that line.
    assert_eq!(ks[2], K::Env(pairs(&[("A", "changed"), ("H", "1")])));
    assert_eq!(ks[3], K::Env(pairs(&[("I", "changed")])));
    assert_eq!(
        ks[4],
        K::Label(pairs(&[("com.example.key", "v a"), ("plain", "yes")]))
    );
    assert_eq!(ks[5], K::Label(pairs(&[("legacy", "some value")])));
    assert_eq!(
        ks[6],
        K::Label(pairs(&[("maintainer", "Jane <jane@example.com>")]))
    );
}

#[test]
fn substitution_forms() {
    let file = ok_with(
        concat!(
            "ARG V=img\nFROM $V:${T:-1}\nARG V\nARG E=\nENV S=set\n",
            "WORKDIR /${S}/${U:-dflt}/${S:-no}/${S:+alt}/${U:+no}/${E:-empty}/${E-unset}/${V}\n",
            "USER ${S:-${U:-nested}}\nSTOPSIGNAL \"SIG\"TERM\n",
            "VOLUME [\"/data/$S\", \"/x\"]\nVOLUME /a \"/b c\"\n",
            "EXPOSE 8080 53/UDP 9000-9001 ${P:-80}\nCMD echo $S\nENTRYPOINT [\"run\", \"$S\"]\n",
        ),
        &[],
    );
    assert_eq!(file.stages[0].from, "img:1");
    let ks: Vec<_> = file.stages[0]
        .instructions
        .iter()
        .map(|i| &i.kind)
        .collect();
    assert_eq!(ks[3], &K::Workdir("/set/dflt/set/alt//empty//img".into()));
    assert_eq!(ks[4], &K::User("set".into()));
    assert_eq!(ks[5], &K::StopSignal("SIGTERM".into()));
    assert_eq!(ks[6], &K::Volume(s(&["/data/set", "/x"])));
    assert_eq!(ks[7], &K::Volume(s(&["/a", "/b c"])));
    assert_eq!(
        ks[8],
        &K::Expose(s(&["8080/tcp", "53/udp", "9000-9001/tcp", "80/tcp"]))
    );
    // No substitution in CMD/ENTRYPOINT.
    assert_eq!(ks[9], &K::Cmd(Shell("echo $S".into())));
    assert_eq!(ks[10], &K::Entrypoint(Exec(s(&["run", "$S"]))));
    // Build args override declared defaults, also for global ARGs used in FROM.
    let file = ok_with("ARG V=a\nFROM $V\nARG V\nUSER $V", &[("V", "b")]);
    assert_eq!(file.stages[0].from, "b");
    assert_eq!(file.stages[0].instructions[1].kind, K::User("b".into()));
    // Global ARGs are not visible in a stage unless redeclared; ENV wins over ARG.
    assert_eq!(kinds("ARG V=a\nFROM x\nUSER u$V")[0], K::User("u".into()));
    assert_eq!(
        kinds("FROM x\nARG A=arg\nENV A=env\nUSER $A")[2],
        K::User("env".into())
    );
    let ks = kinds("FROM x\nARG A B=2\nUSER $B$A");
    assert_eq!(
        ks[0],
        K::Arg {
            name: "A".into(),
            default: None
        }
    );
    assert_eq!(ks[2], K::User("2".into()));
}

#[test]
fn shell_and_exec_forms() {
    let cmd = |text: &str| kinds(&format!("FROM x\nCMD {text}")).remove(0);
    assert_eq!(cmd("[\"a\", \"b c\"]"), K::Cmd(Exec(s(&["a", "b c"]))));
    assert_eq!(cmd("[]"), K::Cmd(Exec(vec![])));
    assert_eq!(cmd("[a, b]"), K::Cmd(Shell("[a, b]".into())));
    assert_eq!(cmd("[\"a\", 1]"), K::Cmd(Shell("[\"a\", 1]".into())));
    let ks = kinds("FROM x\nENTRYPOINT /app.wasm --flag");
    assert_eq!(ks[0], K::Entrypoint(Shell("/app.wasm --flag".into())));
    let ks = kinds("FROM x\nCOPY [\"a b\", \"c\", \"/d/\"]\nCOPY \"x y\" '/z'");
    assert_eq!(ks, vec![copy(&["a b", "c"], "/d/"), copy(&["x y"], "/z")]);
}

#[test]
fn copy_flags_and_stages() {
    let text = "FROM a AS Build\nENV K=v\nFROM build as final\n\
                copy --link --chown=1:$K --chmod=755 --from=build x /y\nadd --chmod=644 f g /h/";
    let file = ok_with(text, &[]);
    assert_eq!(file.stages.len(), 2);
    assert_eq!(file.stages[0].name.as_deref(), Some("build"));
    let last = file.final_stage().expect("stage");
    assert_eq!(
        (last.from.as_str(), last.name.as_deref(), last.line),
        ("build", Some("final"), 3)
    );
    let (chown, chmod, from) = (Some("1:v".into()), Some("755".into()), Some("build".into()));
    let (sources, dest) = (s(&["x"]), "/y".to_string());
    let expected = K::Copy {
        sources,
        dest,
        chown,
        chmod,
        from,
    };
    assert_eq!(last.instructions[0].kind, expected);
    let (sources, dest, chmod) = (s(&["f", "g"]), "/h/".to_string(), Some("644".into()));
    assert_eq!(
        last.instructions[1].kind,
        K::Add {
            sources,
            dest,
            chown: None,
            chmod
        }
    );
    let file = ok_with("FROM --platform=wasi/wasm scratch", &[]);
    assert_eq!(file.stages[0].from, "scratch");
}

#[test]
fn errors_with_line_numbers() {
    let run =
        "RUN is not supported: wasm images are assembled without running a shell; use COPY/ADD";
    let cases: &[(&str, usize, &str)] = &[
        ("FROM x\n\nRUN make", 3, run),
        ("ARG A\nrun x", 2, run),
        ("FROM x\nFORM y", 2, "unknown instruction \"FORM\""),
        ("# c\nCOPY a b", 2, "no FROM instruction before COPY"),
        (
            "FROM x\nHEALTHCHECK NONE",
            2,
            "HEALTHCHECK is not supported by wrun",
        ),
        (
            "FROM x\nonbuild COPY a b",
            2,
            "ONBUILD is not supported by wrun",
        ),
        (
            "FROM x\nSHELL [\"sh\"]",
            2,
            "SHELL is not supported by wrun",
        ),
        (
            "FROM x\nCOPY \\\n  a",
            2,
            "COPY requires at least two arguments",
        ),
        ("FROM x\nADD a", 2, "ADD requires at least two arguments"),
        ("FROM x\nCOPY", 2, "COPY requires at least one argument"),
        (
            "FROM x\nADD https://e.com/a /a",
            2,
            "ADD from remote URL \"https://e.com/a\" is not supported; download it first",
        ),
        (
            "FROM x\nADD HTTP://e.com/a /a",
            2,
            "ADD from remote URL \"HTTP://e.com/a\" is not supported; download it first",
        ),
        ("FROM x\nADD --from=a b c", 2, "unknown flag --from for ADD"),
        (
            "FROM x\nCOPY --bogus a b",
            2,
            "unknown flag --bogus for COPY",
        ),
        (
            "FROM x\nCOPY --chown a b",
            2,
            "flag --chown requires a value",
        ),
        (
            "FROM x\nCOPY --chmod=1 --chmod=2 a b",
            2,
            "flag --chmod given twice",
        ),
        (
            "FROM x\nEXPOSE 80 http",
            2,
            "EXPOSE has invalid port \"http\"",
        ),
        (
            "FROM x\nEXPOSE 70000",
            2,
            "EXPOSE has invalid port \"70000\"",
        ),
        ("FROM x\nEXPOSE +80", 2, "EXPOSE has invalid port \"+80\""),
        ("FROM x\nEXPOSE 0", 2, "EXPOSE has invalid port \"0\""),
        (
            "FROM x\nEXPOSE 80/icmp",
            2,
            "EXPOSE has invalid port \"80/icmp\"",
        ),
        (
            "FROM x\nEXPOSE 90-80",
            2,
            "EXPOSE has invalid port \"90-80\"",
        ),
        (
            "FROM x\nWORKDIR",
            2,
            "WORKDIR requires at least one argument",
        ),
        (
            "FROM x\nWORKDIR $NOPE",
            2,
            "WORKDIR requires a non-empty value",
        ),
        ("FROM x\nUSER \"\"", 2, "USER requires a non-empty value"),
        (
            "FROM x\nENV A=\"open",
            2,
            "unterminated quote in \"\\\"open\"",
        ),
        ("FROM x\nLABEL a='x", 2, "unterminated quote in \"'x\""),
        ("FROM x\nUSER ${A", 2, "bad substitution in \"${A\""),
        (
            "FROM x\nUSER ${A:-${B}",
            2,
            "bad substitution in \"${A:-${B}\"",
        ),
        ("FROM x\nUSER ${}", 2, "bad substitution in \"${}\""),
        ("FROM x\nUSER ${A/b}", 2, "bad substitution in \"${A/b}\""),
        (
            "FROM x\nUSER ${A:?needs A}",
            2,
            "variable A is required: needs A",
        ),
        ("FROM x\nUSER ${A?}", 2, "variable A is required: not set"),
        ("FROM x\nENV A=1 B", 2, "ENV expects name=value, got \"B\""),
        ("FROM x\nENV A", 2, "ENV expects name=value, got \"A\""),
        ("FROM x\nLABEL =v", 2, "LABEL name must not be empty"),
        ("FROM x\nARG =v", 2, "ARG name must not be empty"),
        ("FROM", 1, "FROM requires an image and optionally AS name"),
        (
            "FROM a b",
            1,
            "FROM requires an image and optionally AS name",
        ),
        ("FROM $UNSET", 1, "FROM requires a non-empty image name"),
        (
            "FROM a AS 1x",
            1,
            "invalid stage name \"1x\": must match [a-z][a-z0-9._-]*",
        ),
        (
            "FROM a AS b\n\nFROM c AS B",
            3,
            "stage name \"b\" is already used",
        ),
        ("FROM --os=x a", 1, "unknown flag --os for FROM"),
        (
            "FROM x\nVOLUME [\"\"]",
            2,
            "VOLUME requires non-empty paths",
        ),
    ];
    for (text, line, message) in cases {
        assert_eq!(
            err(text),
            format!("Dockerfile line {line}: {message}"),
            "for {text:?}"
        );
    }
    assert_eq!(err(""), "Dockerfile has no FROM instruction");
    let deep = format!(
        "FROM x\nUSER {}{}",
        "${A:-".repeat(100_000),
        "}".repeat(100_000)
    );
    assert!(err(&deep).starts_with("Dockerfile line 2: bad substitution in "));
    let nested = format!("FROM x\nUSER {}a{}", "${A:-".repeat(30), "}".repeat(30));
    assert_eq!(kinds(&nested), vec![K::User("a".into())]);
    assert_eq!(
        err("ARG A=1\n# only args"),
        "Dockerfile has no FROM instruction"
    );
}

#[test]
fn garbage_never_panics() {
    const PIECES: &[&str] = &[
        "FROM",
        "COPY",
        "ADD",
        "ENV",
        "LABEL",
        "ARG",
        "CMD",
        "EXPOSE",
        "WORKDIR",
        "VOLUME",
        "USER",
        "STOPSIGNAL",
        "ENTRYPOINT",
        "MAINTAINER",
        " ",
        "\n",
        "\\",
        "`",
        "\\\n",
        "#",
        "# escape=`\n",
        "$",
        "${",
        "}",
        ":-",
        ":+",
        ":?",
        "-",
        "+",
        "=",
        "\"",
        "'",
        "[",
        "]",
        "\",\"",
        "--chown=",
        "--from=",
        "--link",
        "--",
        "AS",
        "a",
        "/",
        "80",
        "/udp",
        "é",
        "\r\n",
        "\t",
        "\u{feff}",
        "\0",
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let build = map(&[("a", "x y"), ("A", "${")]);
    for round in 0..5_000 {
        let len = (next() % 40) as usize;
        let text = if round % 4 == 0 {
            let bytes: Vec<u8> = (0..len * 3).map(|_| next() as u8).collect();
            String::from_utf8_lossy(&bytes).into_owned()
        } else {
            let mut text = String::from(if round % 2 == 0 { "FROM a\n" } else { "" });
            for _ in 0..len {
                let i = (next() % PIECES.len() as u64) as usize;
                text.push_str(PIECES.get(i).copied().unwrap_or(""));
            }
            text
        };
        if let Err(e) = parse(&text, &build) {
            assert!(e.to_string().starts_with("Dockerfile "), "{e}");
        }
    }
}
