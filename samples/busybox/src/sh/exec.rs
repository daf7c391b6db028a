//! The shell's evaluator: control flow, redirections, and running builtins
//! and applets in-process (WASI cannot spawn processes).

use super::lex::RedirOp;
use super::parse::{AndOr, Command, Compound, Conn, Pipeline, Redir, Script, Simple};
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

/// A pending `break N` or `continue N`: commands stop running until the
/// loop it targets handles it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Flow {
    Break(usize),
    Continue(usize),
}

/// Shell state that lives across commands.
pub struct Shell {
    pub(super) vars: BTreeMap<String, String>,
    pub(super) exported: BTreeSet<String>,
    /// `$0`, `$1`, ...
    pub(super) args: Vec<String>,
    /// `$?`
    pub status: i32,
    /// Set by `exit`: stop running and exit with this status.
    pub exit: Option<i32>,
    /// Set by `break` and `continue`.
    pub(super) flow: Option<Flow>,
    /// How many loops enclose the running command.
    pub(super) loops: usize,
    /// The status of the last command substitution of the command being
    /// expanded (`x=$(false)` fails).
    pub(super) subst_status: Option<i32>,
    /// `set -e`: exit when a command fails outside a condition.
    pub(super) errexit: bool,
    /// `set -x`: print commands to stderr before running them.
    pub(super) xtrace: bool,
    /// How many conditions (`if`, `while`, the left of `&&`) are being
    /// evaluated: `set -e` ignores failures there.
    conditions: usize,
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
            flow: None,
            loops: 0,
            subst_status: None,
            errexit: false,
            xtrace: false,
            conditions: 0,
        }
    }

    /// Runs a script; returns the exit status (of `exit`, or the last command).
    pub fn run(&mut self, ctx: &mut Ctx<'_>, script: &Script) -> i32 {
        self.run_list(ctx, script);
        // A `break` outside any loop has nothing to leave.
        self.flow = None;
        self.exit.unwrap_or(self.status)
    }

    /// Whether `exit`, `break` or `continue` stops the commands that follow.
    fn stopped(&self) -> bool {
        self.exit.is_some() || self.flow.is_some()
    }

    /// Runs a list of commands; returns the status of the last one.
    fn run_list(&mut self, ctx: &mut Ctx<'_>, script: &Script) -> i32 {
        for item in script {
            if self.stopped() {
                break;
            }
            self.and_or(ctx, item);
        }
        self.status
    }

    fn and_or(&mut self, ctx: &mut Ctx<'_>, item: &AndOr) {
        let last = item.rest.len();
        self.checked_pipeline(ctx, &item.first, last == 0);
        for (i, (conn, pipeline)) in item.rest.iter().enumerate() {
            if self.stopped() {
                return;
            }
            let wanted = match conn {
                Conn::And => self.status == 0,
                Conn::Or => self.status != 0,
            };
            if wanted {
                self.checked_pipeline(ctx, pipeline, i + 1 == last);
            }
        }
    }

    /// Runs a pipeline; with `set -e`, a failing one that is not tested
    /// (by `&&`, `||`, `!` or a condition) exits the shell.
    fn checked_pipeline(&mut self, ctx: &mut Ctx<'_>, pipeline: &Pipeline, last: bool) {
        if !last {
            self.conditions += 1;
        }
        self.pipeline(ctx, pipeline);
        if !last {
            self.conditions -= 1;
        } else if self.errexit
            && self.conditions == 0
            && !pipeline.negate
            && self.status != 0
            && !self.stopped()
        {
            self.exit = Some(self.status);
        }
    }

    /// Runs a condition list, where `set -e` does not apply.
    fn condition(&mut self, ctx: &mut Ctx<'_>, cond: &Script) {
        self.conditions += 1;
        self.run_list(ctx, cond);
        self.conditions -= 1;
    }

    /// Without processes, a pipeline runs its commands one after another,
    /// each reading the previous one's buffered output.
    fn pipeline(&mut self, ctx: &mut Ctx<'_>, pipeline: &Pipeline) {
        let cmds = &pipeline.cmds;
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
            self.flow = None;
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
            self.flow = None;
        }
        if pipeline.negate && !self.stopped() {
            self.status = i32::from(self.status == 0);
        }
    }

    fn command(&mut self, ctx: &mut Ctx<'_>, cmd: &Command) {
        match cmd {
            Command::Simple(simple) => self.simple(ctx, simple),
            Command::Compound(compound, redirs) => {
                let env = self.exported_env();
                self.status =
                    self.with_redirs(ctx, redirs, &env, |sh, sub| sh.compound(sub, compound));
            }
        }
    }

    fn simple(&mut self, ctx: &mut Ctx<'_>, cmd: &Simple) {
        self.subst_status = None;
        let expanded = self.expand_words(ctx, &cmd.words).and_then(|argv| {
            let assigns = cmd
                .assigns
                .iter()
                .map(|(name, value)| Ok((name.clone(), self.expand_str(ctx, value)?)))
                .collect::<Result<Vec<(String, String)>, String>>()?;
            Ok((argv, assigns))
        });
        let (argv, assigns) = match expanded {
            Ok(x) => x,
            Err(msg) => {
                let _ = writeln!(ctx.stderr, "sh: {msg}");
                self.status = 2;
                return;
            }
        };
        if self.xtrace {
            let words: Vec<String> = assigns
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .chain(argv.iter().cloned())
                .collect();
            let _ = writeln!(ctx.stderr, "+ {}", words.join(" "));
        }
        let mut env = self.exported_env();
        let status = if argv.is_empty() {
            for (name, value) in assigns {
                self.vars.insert(name, value);
            }
            env = self.exported_env();
            let status = self.subst_status.unwrap_or(0);
            self.with_redirs(ctx, &cmd.redirs, &env, |_, _| status)
        } else {
            env.extend(assigns);
            self.with_redirs(ctx, &cmd.redirs, &env, |sh, sub| sh.dispatch(sub, &argv))
        };
        self.status = status;
    }

    fn compound(&mut self, ctx: &mut Ctx<'_>, compound: &Compound) -> i32 {
        match compound {
            Compound::Group(body) => self.run_list(ctx, body),
            Compound::Subshell(body) => self.subshell(ctx, body),
            Compound::If { arms, otherwise } => {
                for (cond, body) in arms {
                    self.condition(ctx, cond);
                    if self.stopped() {
                        return self.status;
                    }
                    if self.status == 0 {
                        return self.run_list(ctx, body);
                    }
                }
                match otherwise {
                    Some(body) => self.run_list(ctx, body),
                    None => 0,
                }
            }
            Compound::For { var, words, body } => {
                let items = match words {
                    Some(words) => match self.expand_words(ctx, words) {
                        Ok(items) => items,
                        Err(msg) => {
                            let _ = writeln!(ctx.stderr, "sh: {msg}");
                            return 2;
                        }
                    },
                    None => self.args.get(1..).unwrap_or_default().to_vec(),
                };
                let mut status = 0;
                self.loops += 1;
                for item in items {
                    self.vars.insert(var.clone(), item);
                    status = self.run_list(ctx, body);
                    if self.leave_loop() {
                        break;
                    }
                }
                self.loops -= 1;
                status
            }
            Compound::Loop { until, cond, body } => {
                let mut status = 0;
                self.loops += 1;
                loop {
                    self.condition(ctx, cond);
                    if self.stopped() {
                        if self.leave_loop() {
                            break;
                        }
                        continue;
                    }
                    if (self.status == 0) == *until {
                        break;
                    }
                    status = self.run_list(ctx, body);
                    if self.leave_loop() {
                        break;
                    }
                }
                self.loops -= 1;
                status
            }
        }
    }

    /// Handles a pending `break`/`continue` at the end of a loop iteration:
    /// whether the loop must end (also on `exit`). `break 2` leaves this
    /// loop and breaks the enclosing one.
    fn leave_loop(&mut self) -> bool {
        if self.exit.is_some() {
            return true;
        }
        match self.flow.take() {
            None => false,
            Some(Flow::Break(n)) => {
                if n > 1 {
                    self.flow = Some(Flow::Break(n - 1));
                }
                true
            }
            Some(Flow::Continue(n)) if n > 1 => {
                self.flow = Some(Flow::Continue(n - 1));
                true
            }
            Some(Flow::Continue(_)) => false,
        }
    }

    /// Runs `body` like a child shell would: variable changes, `cd`, `exit`
    /// and loop control do not leak out.
    pub(super) fn subshell(&mut self, ctx: &mut Ctx<'_>, body: &Script) -> i32 {
        let vars = self.vars.clone();
        let exported = self.exported.clone();
        let args = self.args.clone();
        let loops = std::mem::take(&mut self.loops);
        let (errexit, xtrace) = (self.errexit, self.xtrace);
        let cwd = std::env::current_dir().ok();
        self.run_list(ctx, body);
        let status = self.exit.take().unwrap_or(self.status);
        self.flow = None;
        self.vars = vars;
        self.exported = exported;
        self.args = args;
        self.loops = loops;
        (self.errexit, self.xtrace) = (errexit, xtrace);
        if let Some(cwd) = cwd
            && std::env::current_dir().ok().as_ref() != Some(&cwd)
        {
            let _ = std::env::set_current_dir(cwd);
        }
        self.status = status;
        status
    }

    /// Runs a builtin or an applet.
    fn dispatch(&mut self, ctx: &mut Ctx<'_>, argv: &[String]) -> i32 {
        let Some((name, args)) = argv.split_first() else {
            return 0;
        };
        if let Some(status) = self.builtin(ctx, name, args) {
            return status;
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
        let mut targets = Vec::with_capacity(redirs.len());
        for redir in redirs {
            let target = match &redir.target {
                Some(word) => match self.expand_str(ctx, word) {
                    Ok(t) => t,
                    Err(msg) => {
                        let _ = writeln!(ctx.stderr, "sh: {msg}");
                        return 2;
                    }
                },
                None => String::new(),
            };
            targets.push(target);
        }
        let parent_out: Sink<'_> = Rc::new(RefCell::new(&mut *ctx.stdout));
        let parent_err: Sink<'_> = Rc::new(RefCell::new(&mut *ctx.stderr));
        // fds[0] is descriptor 1 (stdout), fds[1] is descriptor 2 (stderr).
        let mut fds = [parent_out, parent_err];
        let mut input: Option<Box<dyn BufRead>> = None;
        for (redir, target) in redirs.iter().zip(&targets) {
            let result = match redir.op {
                RedirOp::Out(fd) | RedirOp::Append(fd) => {
                    let append = matches!(redir.op, RedirOp::Append(_));
                    out_slot(fd).and_then(|slot| {
                        if target == NULL_DEVICE {
                            fds[slot] = Rc::new(RefCell::new(io::sink()));
                            return Ok(());
                        }
                        let file = OpenOptions::new()
                            .write(true)
                            .create(true)
                            .append(append)
                            .truncate(!append)
                            .open(target)
                            .map_err(|e| format!("can't create {target}: {}", errmsg(&e)))?;
                        let sink: Sink<'_> = Rc::new(RefCell::new(BufWriter::new(file)));
                        fds[slot] = sink;
                        Ok(())
                    })
                }
                RedirOp::In(0) if target == NULL_DEVICE => {
                    input = Some(Box::new(io::empty()));
                    Ok(())
                }
                RedirOp::In(0) => File::open(target)
                    .map(|f| input = Some(Box::new(BufReader::new(f))))
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

    pub(super) fn exported_env(&self) -> Env {
        self.exported
            .iter()
            .filter_map(|k| self.vars.get(k).map(|v| (k.clone(), v.clone())))
            .collect()
    }
}

/// WASI roots rarely have device files, but scripts use `>/dev/null`
/// everywhere: the shell provides it itself.
const NULL_DEVICE: &str = "/dev/null";

/// Maps an output descriptor to its slot in the table.
fn out_slot(fd: u32) -> Result<usize, String> {
    match fd {
        1 => Ok(0),
        2 => Ok(1),
        _ => Err(format!("{fd}: unsupported file descriptor")),
    }
}
