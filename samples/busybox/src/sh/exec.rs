//! The shell's evaluator: variables and expansion, redirections, builtins,
//! and running applets in-process (WASI cannot spawn processes).

use super::lex::RedirOp;
use super::parse::{AndOr, Command, Conn, Redir, Script};
use crate::applets;
use crate::ctx::{Ctx, Env, basename, errmsg};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Cursor, Write};
use std::rc::Rc;

/// An output file descriptor; `2>&1` makes two descriptors share one.
type Sink<'a> = Rc<RefCell<dyn Write + 'a>>;

/// A `Write` handle onto a shared [`Sink`].
struct SinkWriter<'a>(Sink<'a>);

impl Write for SinkWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.0.try_borrow_mut() {
            Ok(mut w) => w.write(buf),
            Err(_) => Err(io::Error::other("stream busy")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.0.try_borrow_mut() {
            Ok(mut w) => w.flush(),
            Err(_) => Err(io::Error::other("stream busy")),
        }
    }
}

/// Shell state that lives across commands.
pub struct Shell {
    pub(super) vars: BTreeMap<String, String>,
    exported: BTreeSet<String>,
    /// `$0`, `$1`, ...
    pub(super) args: Vec<String>,
    /// `$?`
    pub status: i32,
    /// Set by `exit`: stop running and exit with this status.
    pub exit: Option<i32>,
}

impl Shell {
    /// A shell whose variables start as the (exported) environment.
    pub fn new(env: &Env, args: Vec<String>) -> Self {
        Shell {
            vars: env.clone(),
            exported: env.keys().cloned().collect(),
            args,
            status: 0,
            exit: None,
        }
    }

    /// Runs a script; returns the exit status (of `exit`, or the last command).
    pub fn run(&mut self, ctx: &mut Ctx<'_>, script: &Script) -> i32 {
        for item in script {
            if self.exit.is_some() {
                break;
            }
            self.and_or(ctx, item);
        }
        self.exit.unwrap_or(self.status)
    }

    fn and_or(&mut self, ctx: &mut Ctx<'_>, item: &AndOr) {
        self.pipeline(ctx, &item.first);
        for (conn, pipeline) in &item.rest {
            if self.exit.is_some() {
                return;
            }
            let wanted = match conn {
                Conn::And => self.status == 0,
                Conn::Or => self.status != 0,
            };
            if wanted {
                self.pipeline(ctx, pipeline);
            }
        }
    }

    /// Without processes, a pipeline runs its commands one after another,
    /// each reading the previous one's buffered output.
    fn pipeline(&mut self, ctx: &mut Ctx<'_>, cmds: &[Command]) {
        let Some((last, init)) = cmds.split_last() else {
            return;
        };
        let mut input: Option<Vec<u8>> = None;
        for cmd in init {
            let mut output = Vec::new();
            let mut cursor;
            let stdin: &mut dyn BufRead = match input.take() {
                Some(buf) => {
                    cursor = Cursor::new(buf);
                    &mut cursor
                }
                None => &mut *ctx.stdin,
            };
            let mut sub = Ctx {
                stdin,
                stdout: &mut output,
                stderr: &mut *ctx.stderr,
                env: ctx.env,
            };
            self.command(&mut sub, cmd);
            // Pipeline members are subshells: `exit` there ends only them.
            self.exit = None;
            input = Some(output);
        }
        let mut cursor;
        let stdin: &mut dyn BufRead = match input {
            Some(buf) => {
                cursor = Cursor::new(buf);
                &mut cursor
            }
            None => &mut *ctx.stdin,
        };
        let mut sub = Ctx {
            stdin,
            stdout: &mut *ctx.stdout,
            stderr: &mut *ctx.stderr,
            env: ctx.env,
        };
        self.command(&mut sub, last);
        if cmds.len() > 1 {
            self.exit = None;
        }
    }

    fn command(&mut self, ctx: &mut Ctx<'_>, cmd: &Command) {
        let argv = self.expand_words(&cmd.words);
        let assigns: Vec<(String, String)> = cmd
            .assigns
            .iter()
            .map(|(name, value)| (name.clone(), self.expand_str(value)))
            .collect();
        let mut env = self.exported_env();
        let status = if argv.is_empty() {
            for (name, value) in assigns {
                self.vars.insert(name, value);
            }
            env = self.exported_env();
            self.with_redirs(ctx, &cmd.redirs, &env, |_, _| 0)
        } else {
            env.extend(assigns);
            self.with_redirs(ctx, &cmd.redirs, &env, |sh, sub| sh.dispatch(sub, &argv))
        };
        self.status = status;
    }

    /// Runs a builtin or an applet.
    fn dispatch(&mut self, ctx: &mut Ctx<'_>, argv: &[String]) -> i32 {
        let Some((name, args)) = argv.split_first() else {
            return 0;
        };
        match name.as_str() {
            "exit" => return self.builtin_exit(ctx, args),
            "cd" => return self.builtin_cd(ctx, args),
            "export" => return self.builtin_export(ctx, args),
            _ => {}
        }
        // `echo`, `true`, `false` and `pwd` are applets as well as builtins.
        let applet = basename(name);
        if applet == "busybox" {
            return applets::multicall(ctx, argv);
        }
        match applets::lookup(applet) {
            Some(run) => run(ctx, args),
            None => {
                let _ = writeln!(ctx.stderr, "sh: {name}: not found");
                127
            }
        }
    }

    /// Applies redirections (left to right), then runs `body` with the
    /// resulting streams and flushes them.
    fn with_redirs(
        &mut self,
        ctx: &mut Ctx<'_>,
        redirs: &[Redir],
        env: &Env,
        body: impl FnOnce(&mut Shell, &mut Ctx<'_>) -> i32,
    ) -> i32 {
        let parent_out: Sink<'_> = Rc::new(RefCell::new(&mut *ctx.stdout));
        let parent_err: Sink<'_> = Rc::new(RefCell::new(&mut *ctx.stderr));
        // fds[0] is descriptor 1 (stdout), fds[1] is descriptor 2 (stderr).
        let mut fds = [parent_out, parent_err];
        let mut input: Option<BufReader<File>> = None;
        for redir in redirs {
            let target = redir
                .target
                .as_ref()
                .map(|w| self.expand_str(w))
                .unwrap_or_default();
            let result = match redir.op {
                RedirOp::Out(fd) | RedirOp::Append(fd) => {
                    let append = matches!(redir.op, RedirOp::Append(_));
                    out_slot(fd).and_then(|slot| {
                        let file = OpenOptions::new()
                            .write(true)
                            .create(true)
                            .append(append)
                            .truncate(!append)
                            .open(&target)
                            .map_err(|e| format!("can't create {target}: {}", errmsg(&e)))?;
                        let sink: Sink<'_> = Rc::new(RefCell::new(BufWriter::new(file)));
                        fds[slot] = sink;
                        Ok(())
                    })
                }
                RedirOp::In(0) => File::open(&target)
                    .map(|f| input = Some(BufReader::new(f)))
                    .map_err(|e| format!("can't open {target}: {}", errmsg(&e))),
                RedirOp::In(fd) => Err(format!("{fd}: unsupported file descriptor")),
                RedirOp::Dup(fd, to) => out_slot(fd).and_then(|slot| {
                    fds[slot] = fds[out_slot(to)?].clone();
                    Ok(())
                }),
            };
            if let Err(msg) = result {
                let _ = writeln!(SinkWriter(fds[1].clone()), "sh: {msg}");
                return 1;
            }
        }
        let mut out = SinkWriter(fds[0].clone());
        let mut err = SinkWriter(fds[1].clone());
        let stdin: &mut dyn BufRead = match input.as_mut() {
            Some(file) => file,
            None => &mut *ctx.stdin,
        };
        let mut sub = Ctx {
            stdin,
            stdout: &mut out,
            stderr: &mut err,
            env,
        };
        let status = body(self, &mut sub);
        match out.flush().and_then(|()| err.flush()) {
            Ok(()) => status,
            Err(e) => {
                let _ = writeln!(err, "sh: write error: {}", errmsg(&e));
                if status == 0 { 1 } else { status }
            }
        }
    }

    fn builtin_exit(&mut self, ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
        let code = match args.first() {
            None => self.status,
            Some(arg) => match arg.parse::<i64>() {
                // Like other shells, only the low 8 bits survive.
                Ok(n) => i32::try_from(n.rem_euclid(256)).unwrap_or(255),
                Err(_) => {
                    let _ = writeln!(ctx.stderr, "sh: exit: Illegal number: {arg}");
                    2
                }
            },
        };
        self.exit = Some(code);
        code
    }

    fn builtin_cd(&mut self, ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
        let dir = match args.first().map(String::as_str) {
            Some("-") => self.vars.get("OLDPWD").cloned().unwrap_or_default(),
            Some(dir) => dir.to_string(),
            None => self
                .vars
                .get("HOME")
                .filter(|h| !h.is_empty())
                .cloned()
                .unwrap_or_else(|| "/".to_string()),
        };
        if let Err(e) = std::env::set_current_dir(&dir) {
            let _ = writeln!(ctx.stderr, "sh: cd: can't cd to {dir}: {}", errmsg(&e));
            return 1;
        }
        let new = std::env::current_dir()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or(dir);
        if let Some(old) = self.vars.insert("PWD".to_string(), new) {
            self.vars.insert("OLDPWD".to_string(), old);
        }
        0
    }

    fn builtin_export(&mut self, ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
        if args.is_empty() {
            for name in &self.exported {
                if let Some(value) = self.vars.get(name) {
                    let quoted = value.replace('\'', "'\\''");
                    if writeln!(ctx.stdout, "export {name}='{quoted}'").is_err() {
                        return 1;
                    }
                }
            }
            return 0;
        }
        let mut status = 0;
        for arg in args {
            let (name, value) = match arg.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (arg.as_str(), None),
            };
            let mut chars = name.chars();
            let valid = chars.next().is_some_and(super::lex::is_name_start)
                && chars.all(super::lex::is_name_char);
            if !valid {
                let _ = writeln!(ctx.stderr, "sh: export: bad variable name: {name}");
                status = 1;
                continue;
            }
            if let Some(value) = value {
                self.vars.insert(name.to_string(), value.to_string());
            }
            self.exported.insert(name.to_string());
        }
        status
    }

    fn exported_env(&self) -> Env {
        self.exported
            .iter()
            .filter_map(|k| self.vars.get(k).map(|v| (k.clone(), v.clone())))
            .collect()
    }
}

/// Maps an output descriptor to its slot in the table.
fn out_slot(fd: u32) -> Result<usize, String> {
    match fd {
        1 => Ok(0),
        2 => Ok(1),
        _ => Err(format!("{fd}: unsupported file descriptor")),
    }
}
