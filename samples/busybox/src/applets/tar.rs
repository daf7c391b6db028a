//! `tar`: creates (`c`), extracts (`x`) and lists (`t`) ustar/GNU archives,
//! gzip-compressed with `-z` (and detected when extracting). The `tar`
//! crate reads and writes the format; walking the file system and creating
//! files is done here, so that extraction can refuse entries that would
//! land outside the target directory: absolute names, `..` components, and
//! paths through a symlink the archive itself created.
//!
//! `docker cp` and `kubectl cp` run `tar cf - PATH` and `tar xf - -C DIR`
//! (or `tar -xmf - -C DIR`, with `--no-same-owner` and the like) through
//! exec: those forms are the ones that matter most.

use super::date::{Stamp, Tm, strftime};
use crate::ctx::{Ctx, errmsg};
use crate::opts;
use flate2::Compression;
use flate2::bufread::MultiGzDecoder;
use flate2::write::GzEncoder;
use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};
use tar::{Archive, Builder, EntryType, Header};

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Create,
    Extract,
    List,
}

struct Options {
    mode: Mode,
    archive: String,
    dir: Option<String>,
    gzip: bool,
    verbose: bool,
    /// `-m`: do not restore modification times.
    no_mtime: bool,
    /// `-O`: extract file contents to stdout.
    to_stdout: bool,
    /// `-h`: archive what symlinks point to.
    dereference: bool,
    operands: Vec<String>,
}

/// `tar -c|-x|-t [-vzmOh] [-f ARCHIVE] [-C DIR] [PATH]...` (the first
/// argument may also be a bundle without a dash, as in `tar czf x.tgz d`).
pub fn main(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let options = match parse_args(args) {
        Ok(o) => o,
        Err(msg) => {
            let _ = writeln!(ctx.stderr, "busybox: tar: {msg}");
            return 2;
        }
    };
    let result = match options.mode {
        Mode::Create => create(ctx, &options),
        Mode::Extract | Mode::List => extract(ctx, &options),
    };
    match result {
        Ok(status) => status,
        Err(msg) => {
            let _ = writeln!(ctx.stderr, "busybox: tar: {msg}");
            2
        }
    }
}

/// Long options and the old dashless bundle become getopt-style options.
fn normalize(args: &[String]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut rest = args.iter();
    if let Some(first) = args
        .first()
        .filter(|a| !a.starts_with('-') && !a.is_empty())
    {
        rest.next();
        // Each letter that takes a value takes the next argument, in order.
        for c in first.chars() {
            out.push(format!("-{c}"));
            if "fC".contains(c) {
                let value = rest
                    .next()
                    .ok_or_else(|| format!("option requires an argument -- '{c}'"))?;
                out.push(value.clone());
            }
        }
    }
    while let Some(arg) = rest.next() {
        let Some(long) = arg.strip_prefix("--").filter(|l| !l.is_empty()) else {
            out.push(arg.clone());
            if arg == "--" {
                out.extend(rest.cloned());
                break;
            }
            continue;
        };
        let (name, value) = match long.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (long, None),
        };
        let short = match name {
            "create" => "c",
            "extract" | "get" => "x",
            "list" => "t",
            "verbose" => "v",
            "gzip" | "gunzip" | "ungzip" => "z",
            "touch" => "m",
            "to-stdout" => "O",
            "dereference" => "h",
            "file" => "f",
            "directory" => "C",
            // Ownership and permissions mean nothing on WASI.
            "no-same-owner"
            | "same-owner"
            | "no-same-permissions"
            | "same-permissions"
            | "preserve-permissions"
            | "numeric-owner"
            | "overwrite"
            | "no-overwrite-dir"
            | "warning"
            | "unlink-first" => continue,
            _ => return Err(format!("unrecognized option '--{name}'")),
        };
        out.push(format!("-{short}"));
        if short == "f" || short == "C" {
            let value = match value {
                Some(v) => v,
                None => rest
                    .next()
                    .cloned()
                    .ok_or_else(|| format!("option '--{name}' requires an argument"))?,
            };
            out.push(value);
        }
    }
    Ok(out)
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let opts = opts::parse(&normalize(args)?, "cxtvzmOhopP", "fC")?;
    let modes: Vec<Mode> = [('c', Mode::Create), ('x', Mode::Extract), ('t', Mode::List)]
        .into_iter()
        .filter(|(c, _)| opts.has(*c))
        .map(|(_, m)| m)
        .collect();
    let mode = match modes.as_slice() {
        [m] => *m,
        [] => return Err("you must specify one of the '-c', '-x' or '-t' options".to_string()),
        _ => return Err("you may not specify more than one of '-c', '-x' or '-t'".to_string()),
    };
    Ok(Options {
        mode,
        archive: opts.value('f').unwrap_or("-").to_string(),
        dir: opts.value('C').map(str::to_string),
        gzip: opts.has('z'),
        verbose: opts.has('v'),
        no_mtime: opts.has('m'),
        to_stdout: opts.has('O'),
        dereference: opts.has('h'),
        operands: opts.operands,
    })
}

/// The archive being written: stdout or a file, maybe through gzip.
enum Sink<'a> {
    Plain(Box<dyn Write + 'a>),
    Gzip(GzEncoder<Box<dyn Write + 'a>>),
}

impl Write for Sink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Plain(w) => w.write(buf),
            Sink::Gzip(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Plain(w) => w.flush(),
            Sink::Gzip(w) => w.flush(),
        }
    }
}

fn create(ctx: &mut Ctx<'_>, o: &Options) -> Result<i32, String> {
    if o.operands.is_empty() {
        return Err("cowardly refusing to create an empty archive".to_string());
    }
    let to_stdout = o.archive == "-";
    let out: Box<dyn Write + '_> = if to_stdout {
        Box::new(&mut *ctx.stdout)
    } else {
        let file = File::create(&o.archive)
            .map_err(|e| format!("{}: Cannot open: {}", o.archive, errmsg(&e)))?;
        Box::new(io::BufWriter::new(file))
    };
    let sink = if o.gzip {
        Sink::Gzip(GzEncoder::new(out, Compression::default()))
    } else {
        Sink::Plain(out)
    };
    let mut walker = Walker {
        builder: Builder::new(sink),
        // With -v, names go to stderr, as the archive may be on stdout.
        stderr: &mut *ctx.stderr,
        verbose: o.verbose,
        dereference: o.dereference,
        status: 0,
        warned_root: false,
    };
    for operand in &o.operands {
        let path = match &o.dir {
            Some(dir) if !operand.starts_with('/') => Path::new(dir).join(operand),
            _ => PathBuf::from(operand),
        };
        let name = walker.member_name(operand);
        walker.add(&path, &name, true)?;
    }
    let status = walker.status;
    let sink = walker
        .builder
        .into_inner()
        .map_err(|e| format!("write error: {}", errmsg(&e)))?;
    let mut out = match sink {
        Sink::Plain(w) => w,
        Sink::Gzip(gz) => gz
            .finish()
            .map_err(|e| format!("write error: {}", errmsg(&e)))?,
    };
    out.flush()
        .map_err(|e| format!("write error: {}", errmsg(&e)))?;
    Ok(status)
}

struct Walker<'a, 'b> {
    builder: Builder<Sink<'a>>,
    stderr: &'b mut dyn Write,
    verbose: bool,
    dereference: bool,
    status: i32,
    warned_root: bool,
}

impl Walker<'_, '_> {
    /// The name an operand gets in the archive: without a leading `/` or
    /// `../` (with a warning, as GNU tar does), without `./` noise.
    fn member_name(&mut self, operand: &str) -> String {
        let mut parts = Vec::new();
        let mut stripped = false;
        for comp in Path::new(operand).components() {
            match comp {
                Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
                Component::ParentDir if parts.is_empty() => stripped = true,
                Component::ParentDir => parts.push("..".to_string()),
                Component::RootDir | Component::Prefix(_) => stripped = true,
                Component::CurDir => {}
            }
        }
        if stripped && !self.warned_root {
            self.warned_root = true;
            let _ = writeln!(
                self.stderr,
                "busybox: tar: removing leading '/' and '../' from member names"
            );
        }
        if parts.is_empty() {
            ".".to_string()
        } else {
            parts.join("/")
        }
    }

    fn warn(&mut self, name: &str, msg: impl std::fmt::Display) {
        let _ = writeln!(self.stderr, "busybox: tar: {name}: {msg}");
        self.status = 2;
    }

    /// Adds `path` as `name`, and a directory's contents after it. Errors
    /// reading the file system are reported and skipped; archive write
    /// errors end the run.
    fn add(&mut self, path: &Path, name: &str, top: bool) -> Result<(), String> {
        let meta = if self.dereference || (top && name == ".") {
            fs::metadata(path)
        } else {
            fs::symlink_metadata(path)
        };
        let meta = match meta {
            Ok(m) => m,
            Err(e) => {
                self.warn(name, format!("Cannot stat: {}", errmsg(&e)));
                return Ok(());
            }
        };
        if self.verbose {
            let slash = if meta.is_dir() && name != "." {
                "/"
            } else {
                ""
            };
            let _ = writeln!(self.stderr, "{name}{slash}");
        }
        let mut header = Header::new_gnu();
        header.set_mtime(
            meta.modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs()),
        );
        header.set_uid(0);
        header.set_gid(0);
        let _ = header.set_username("root");
        let _ = header.set_groupname("root");
        let write_err = |e: io::Error| format!("{name}: {}", errmsg(&e));
        let ft = meta.file_type();
        if ft.is_symlink() {
            let target = match fs::read_link(path) {
                Ok(t) => t,
                Err(e) => {
                    self.warn(name, format!("Cannot readlink: {}", errmsg(&e)));
                    return Ok(());
                }
            };
            header.set_entry_type(EntryType::Symlink);
            header.set_mode(0o777);
            header.set_size(0);
            self.builder
                .append_link(&mut header, name, &target)
                .map_err(write_err)?;
        } else if ft.is_dir() {
            header.set_entry_type(EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            if name != "." {
                self.builder
                    .append_data(&mut header, format!("{name}/"), io::empty())
                    .map_err(write_err)?;
            }
            let mut children: Vec<String> = match fs::read_dir(path) {
                Ok(rd) => rd
                    .filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect(),
                Err(e) => {
                    self.warn(name, format!("Cannot open: {}", errmsg(&e)));
                    return Ok(());
                }
            };
            children.sort();
            for child in children {
                let child_name = if name == "." {
                    child.clone()
                } else {
                    format!("{name}/{child}")
                };
                self.add(&path.join(&child), &child_name, false)?;
            }
        } else if ft.is_file() {
            let mut file = match File::open(path) {
                Ok(f) => f,
                Err(e) => {
                    self.warn(name, format!("Cannot open: {}", errmsg(&e)));
                    return Ok(());
                }
            };
            header.set_entry_type(EntryType::Regular);
            header.set_mode(file_mode(&meta, &mut file));
            header.set_size(meta.len());
            self.builder
                .append_data(&mut header, name, &mut file)
                .map_err(write_err)?;
        } else {
            self.warn(name, "file type not supported; not dumped");
        }
        Ok(())
    }
}

/// Permission bits for a file: the real ones where the system has them;
/// on WASI, executable for wasm modules (as `ls` shows them) and 0644 else.
fn file_mode(meta: &fs::Metadata, file: &mut File) -> u32 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = file;
        meta.permissions().mode() & 0o7777
    }
    #[cfg(not(unix))]
    {
        use std::io::Seek;
        let _ = meta;
        let mut magic = [0u8; 4];
        let is_wasm = file.read_exact(&mut magic).is_ok() && magic == *b"\0asm";
        let _ = file.rewind();
        if is_wasm { 0o755 } else { 0o644 }
    }
}

/// Turns an entry's name into a relative path below the target directory,
/// refusing names that could escape it.
fn safe_relative(name: &Path) -> Result<PathBuf, String> {
    let mut rel = PathBuf::new();
    for comp in name.components() {
        match comp {
            Component::Normal(p) => rel.push(p),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err("refusing to extract a name containing '..'".to_string());
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err("refusing to extract an absolute name".to_string());
            }
        }
    }
    Ok(rel)
}

fn extract(ctx: &mut Ctx<'_>, o: &Options) -> Result<i32, String> {
    let mut file_input;
    let input: &mut dyn BufRead = if o.archive == "-" {
        &mut *ctx.stdin
    } else {
        file_input = BufReader::new(
            File::open(&o.archive)
                .map_err(|e| format!("{}: Cannot open: {}", o.archive, errmsg(&e)))?,
        );
        &mut file_input
    };
    let peek = input
        .fill_buf()
        .map_err(|e| format!("{}: read error: {}", o.archive, errmsg(&e)))?;
    let gzip = o.gzip || peek.starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn Read + '_> = if gzip {
        Box::new(MultiGzDecoder::new(input))
    } else {
        Box::new(input)
    };
    let mut archive = Archive::new(reader);
    let target = PathBuf::from(o.dir.as_deref().unwrap_or("."));
    if o.mode == Mode::Extract && !o.to_stdout {
        match fs::metadata(&target) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(format!(
                    "{}: Cannot open: Not a directory",
                    target.display()
                ));
            }
            Err(e) => return Err(format!("{}: Cannot open: {}", target.display(), errmsg(&e))),
        }
    }
    let entries = archive
        .entries()
        .map_err(|e| format!("{}: {}", o.archive, errmsg(&e)))?;
    let mut x = Extractor {
        target,
        created_links: HashSet::new(),
        dir_times: Vec::new(),
        status: 0,
    };
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("{}: {}", o.archive, errmsg(&e)))?;
        let name = match entry.path() {
            Ok(p) => p.into_owned(),
            Err(e) => {
                let _ = writeln!(ctx.stderr, "busybox: tar: bad entry name: {}", errmsg(&e));
                x.status = 2;
                continue;
            }
        };
        let shown = name.to_string_lossy().into_owned();
        if o.mode == Mode::List {
            let line = if o.verbose {
                long_listing(&entry, &shown)
            } else {
                shown.clone()
            };
            writeln!(ctx.stdout, "{line}").map_err(|e| format!("write error: {}", errmsg(&e)))?;
            continue;
        }
        if o.verbose {
            // The listing goes to stdout unless the contents do.
            let log: &mut dyn Write = if o.to_stdout {
                &mut *ctx.stderr
            } else {
                &mut *ctx.stdout
            };
            let _ = writeln!(log, "{shown}");
        }
        let result = if o.to_stdout {
            match entry.header().entry_type() {
                EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                    io::copy(&mut entry, &mut ctx.stdout)
                        .map(|_| ())
                        .map_err(|e| errmsg(&e))
                }
                _ => Ok(()),
            }
        } else {
            x.entry(&mut entry, &name, o.no_mtime)
        };
        if let Err(msg) = result {
            let _ = writeln!(ctx.stderr, "busybox: tar: {shown}: {msg}");
            x.status = 2;
        }
    }
    // Directory times last: creating their contents changed them.
    if !o.no_mtime {
        for (dir, mtime) in x.dir_times.iter().rev() {
            let _ = File::open(dir).and_then(|f| f.set_modified(mtime_of(*mtime)));
        }
    }
    ctx.stdout
        .flush()
        .map_err(|e| format!("write error: {}", errmsg(&e)))?;
    Ok(x.status)
}

fn mtime_of(secs: u64) -> std::time::SystemTime {
    UNIX_EPOCH
        .checked_add(Duration::from_secs(secs))
        .unwrap_or(UNIX_EPOCH)
}

/// `-rw-r--r-- root/root       13 2026-11-30 04:10 name`, like GNU tar.
fn long_listing<R: Read>(entry: &tar::Entry<'_, R>, name: &str) -> String {
    let h = entry.header();
    let kind = h.entry_type();
    let type_char = match kind {
        EntryType::Directory => 'd',
        EntryType::Symlink => 'l',
        EntryType::Char => 'c',
        EntryType::Block => 'b',
        EntryType::Fifo => 'p',
        _ => '-',
    };
    let mode = h.mode().unwrap_or(0);
    let mut perms = String::from(type_char);
    for shift in [6, 3, 0] {
        let bits = (mode >> shift) & 7;
        perms.push(if bits & 4 != 0 { 'r' } else { '-' });
        perms.push(if bits & 2 != 0 { 'w' } else { '-' });
        perms.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    let user = h
        .username()
        .ok()
        .flatten()
        .map_or_else(|| h.uid().unwrap_or(0).to_string(), str::to_string);
    let group = h
        .groupname()
        .ok()
        .flatten()
        .map_or_else(|| h.gid().unwrap_or(0).to_string(), str::to_string);
    let mtime = i64::try_from(h.mtime().unwrap_or(0)).unwrap_or(0);
    let when = strftime(
        &Tm::from_stamp(Stamp {
            secs: mtime,
            nanos: 0,
        }),
        "%Y-%m-%d %H:%M",
    );
    let link = entry
        .link_name()
        .ok()
        .flatten()
        .map(|l| l.to_string_lossy().into_owned());
    let suffix = match (kind, link) {
        (EntryType::Symlink, Some(l)) => format!(" -> {l}"),
        (EntryType::Link, Some(l)) => format!(" link to {l}"),
        _ => String::new(),
    };
    format!(
        "{perms} {user}/{group} {:>8} {when} {name}{suffix}",
        entry.size()
    )
}

struct Extractor {
    target: PathBuf,
    /// Symlinks this archive created (relative paths): nothing is ever
    /// written through them.
    created_links: HashSet<PathBuf>,
    dir_times: Vec<(PathBuf, u64)>,
    status: i32,
}

impl Extractor {
    /// Refuses `rel` if one of its parents is a symlink from this archive.
    fn check_parents(&self, rel: &Path) -> Result<(), String> {
        let mut prefix = PathBuf::new();
        let comps: Vec<_> = rel.components().collect();
        for comp in comps.iter().take(comps.len().saturating_sub(1)) {
            prefix.push(comp);
            if self.created_links.contains(&prefix) {
                return Err(format!(
                    "refusing to extract through the symbolic link '{}'",
                    prefix.display()
                ));
            }
        }
        Ok(())
    }

    /// Removes what is at `dest` so that a new entry can take its place (a
    /// file is never written through an old symlink). Directories stay.
    fn clear(dest: &Path) -> Result<(), String> {
        match fs::symlink_metadata(dest) {
            Ok(m) if m.is_dir() => Err("Cannot overwrite a directory".to_string()),
            Ok(_) => fs::remove_file(dest).map_err(|e| format!("Cannot unlink: {}", errmsg(&e))),
            Err(_) => Ok(()),
        }
    }

    fn entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        name: &Path,
        no_mtime: bool,
    ) -> Result<(), String> {
        let rel = safe_relative(name)?;
        if rel.as_os_str().is_empty() {
            // `./`: the target directory itself.
            return Ok(());
        }
        self.check_parents(&rel)?;
        let dest = self.target.join(&rel);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(|e| {
                format!(
                    "Cannot create directory '{}': {}",
                    parent.display(),
                    errmsg(&e)
                )
            })?;
        }
        let mtime = entry.header().mtime().unwrap_or(0);
        match entry.header().entry_type() {
            EntryType::Directory => {
                match fs::symlink_metadata(&dest) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => {
                        Self::clear(&dest)?;
                        fs::create_dir(&dest)
                            .map_err(|e| format!("Cannot mkdir: {}", errmsg(&e)))?;
                    }
                    Err(_) => fs::create_dir(&dest)
                        .map_err(|e| format!("Cannot mkdir: {}", errmsg(&e)))?,
                }
                self.dir_times.push((dest, mtime));
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                Self::clear(&dest)?;
                let mut file =
                    File::create(&dest).map_err(|e| format!("Cannot open: {}", errmsg(&e)))?;
                io::copy(entry, &mut file).map_err(|e| format!("Cannot write: {}", errmsg(&e)))?;
                if !no_mtime {
                    let _ = file.set_modified(mtime_of(mtime));
                }
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(|e| errmsg(&e))?
                    .ok_or("symbolic link without a target")?
                    .into_owned();
                Self::clear(&dest)?;
                symlink(&target, &dest).map_err(|e| {
                    format!(
                        "Cannot create symlink to '{}': {}",
                        target.display(),
                        errmsg(&e)
                    )
                })?;
                self.created_links.insert(rel);
            }
            EntryType::Link => {
                let link = entry
                    .link_name()
                    .map_err(|e| errmsg(&e))?
                    .ok_or("hard link without a target")?
                    .into_owned();
                let link_rel = safe_relative(&link).map_err(|m| format!("link target: {m}"))?;
                self.check_parents(&link_rel)?;
                if self.created_links.contains(&link_rel) {
                    return Err(format!(
                        "refusing to hard-link to the symbolic link '{}'",
                        link_rel.display()
                    ));
                }
                Self::clear(&dest)?;
                fs::hard_link(self.target.join(&link_rel), &dest).map_err(|e| {
                    format!("Cannot hard link to '{}': {}", link.display(), errmsg(&e))
                })?;
            }
            // Metadata entries the crate did not fold into the next entry.
            EntryType::XGlobalHeader
            | EntryType::XHeader
            | EntryType::GNULongName
            | EntryType::GNULongLink => {}
            other => return Err(format!("unsupported entry type {:?}; skipped", other)),
        }
        Ok(())
    }
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

/// `std::os::wasi::fs::symlink_path` is still unstable; the deprecated
/// `soft_link` is the stable way to the same WASI call.
#[cfg(target_os = "wasi")]
#[allow(deprecated)]
fn symlink(target: &Path, link: &Path) -> io::Result<()> {
    fs::soft_link(target, link)
}

#[cfg(not(any(unix, target_os = "wasi")))]
fn symlink(_: &Path, _: &Path) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "symbolic links are not supported",
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::ctx::Env;

    fn tar_io(args: &[&str], stdin: &[u8]) -> (i32, Vec<u8>, String) {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let mut input = io::Cursor::new(stdin.to_vec());
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let env = Env::new();
        let code = main(
            &mut Ctx {
                stdin: &mut input,
                stdout: &mut out,
                stderr: &mut err,
                env: &env,
            },
            &args,
        );
        (code, out, String::from_utf8_lossy(&err).into_owned())
    }

    fn s(p: &Path) -> &str {
        p.to_str().unwrap()
    }

    fn make_tree(root: &Path) {
        fs::create_dir_all(root.join("src/sub")).unwrap();
        fs::write(root.join("src/a.txt"), "alpha\n").unwrap();
        fs::write(root.join("src/sub/b.txt"), "beta\n").unwrap();
        fs::write(root.join("src/sub/mod.wasm"), b"\0asm\x01\0\0\0").unwrap();
        symlink(Path::new("a.txt"), &root.join("src/link")).unwrap();
        let long = "x".repeat(120);
        fs::write(root.join("src").join(&long), "long name\n").unwrap();
    }

    #[test]
    fn round_trip_through_a_pipe() {
        let dir = crate::testutil::tempdir("tar");
        make_tree(&dir);
        // docker cp: `tar cf - PATH` on one side, `tar xf - -C DIR` on the other.
        let (code, archive, err) = tar_io(&["cf", "-", "-C", s(&dir), "src"], b"");
        assert_eq!((code, err.as_str()), (0, ""));
        let (code, listing, _) = tar_io(&["tf", "-"], &archive);
        assert_eq!(code, 0);
        let listing = String::from_utf8(listing).unwrap();
        let names: Vec<&str> = listing.lines().collect();
        assert_eq!(
            names,
            [
                "src/",
                "src/a.txt",
                "src/link",
                "src/sub/",
                "src/sub/b.txt",
                "src/sub/mod.wasm",
                &format!("src/{}", "x".repeat(120)),
            ]
        );
        let dest = dir.join("dest");
        fs::create_dir(&dest).unwrap();
        let (code, out, err) = tar_io(&["-xmf", "-", "-C", s(&dest), "--no-same-owner"], &archive);
        assert_eq!((code, out.as_slice(), err.as_str()), (0, &b""[..], ""));
        assert_eq!(
            fs::read_to_string(dest.join("src/a.txt")).unwrap(),
            "alpha\n"
        );
        assert_eq!(
            fs::read_to_string(dest.join("src/sub/b.txt")).unwrap(),
            "beta\n"
        );
        assert_eq!(
            fs::read_link(dest.join("src/link")).unwrap(),
            Path::new("a.txt")
        );
        assert_eq!(
            fs::read_to_string(dest.join("src/link")).unwrap(),
            "alpha\n"
        );
        assert_eq!(
            fs::read_to_string(dest.join("src").join("x".repeat(120))).unwrap(),
            "long name\n"
        );
        // Extracting again overwrites, without following the old symlink.
        let (code, _, err) = tar_io(&["xf", "-", "-C", s(&dest)], &archive);
        assert_eq!((code, err.as_str()), (0, ""));
        // Verbose listing.
        let (_, out, _) = tar_io(&["-tvf", "-"], &archive);
        let out = String::from_utf8(out).unwrap();
        assert!(out.contains(" root/root "), "{out}");
        assert!(out.contains("src/link -> a.txt"), "{out}");
        assert!(
            out.lines().next().unwrap().starts_with("drwxr-xr-x"),
            "{out}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn files_gzip_and_single_file() {
        let dir = crate::testutil::tempdir("tarz");
        make_tree(&dir);
        let tgz = dir.join("a.tgz");
        let (code, _, err) = tar_io(
            &["czf", s(&tgz), "-C", s(&dir), "src/a.txt", "src/sub"],
            b"",
        );
        assert_eq!((code, err.as_str()), (0, ""));
        assert_eq!(&fs::read(&tgz).unwrap()[..2], &[0x1f, 0x8b]);
        let dest = dir.join("out");
        fs::create_dir(&dest).unwrap();
        // Gzip is detected without -z.
        let (code, out, err) = tar_io(&["-x", "-v", "-f", s(&tgz), "-C", s(&dest)], b"");
        assert_eq!((code, err.as_str()), (0, ""));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "src/a.txt\nsrc/sub/\nsrc/sub/b.txt\nsrc/sub/mod.wasm\n"
        );
        assert_eq!(
            fs::read_to_string(dest.join("src/a.txt")).unwrap(),
            "alpha\n"
        );
        let (code, out, _) = tar_io(&["-xzOf", s(&tgz), "src/a.txt"], b"");
        assert_eq!(code, 0);
        assert!(String::from_utf8(out).unwrap().starts_with("alpha\n"));
        // Absolute operands lose their leading '/'.
        let abs = dir.join("src/a.txt");
        let (code, archive, _) = tar_io(&["cf", "-", s(&abs)], b"");
        assert_eq!(code, 0);
        let (_, listing, _) = tar_io(&["t"], &archive);
        assert_eq!(
            String::from_utf8(listing).unwrap(),
            format!("{}\n", s(&abs).trim_start_matches('/'))
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    /// An archive with entries that `tar` the crate writes only when asked
    /// with raw headers: names that escape.
    fn evil_archive(entries: &[(&str, EntryType, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, kind, data) in entries {
            let mut h = Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(0o644);
            // Raw name bytes: the crate's setters refuse `..` and `/x`.
            let gnu = h.as_gnu_mut().unwrap();
            gnu.name[..name.len()].copy_from_slice(name.as_bytes());
            if *kind == EntryType::Symlink || *kind == EntryType::Link {
                gnu.linkname[..data.len()].copy_from_slice(data.as_bytes());
                h.set_size(0);
            } else {
                h.set_size(data.len() as u64);
            }
            h.set_cksum();
            out.extend_from_slice(h.as_bytes());
            if *kind == EntryType::Regular {
                let mut block = data.as_bytes().to_vec();
                block.resize(data.len().div_ceil(512) * 512, 0);
                out.extend_from_slice(&block);
            }
        }
        out.extend_from_slice(&[0u8; 1024]);
        out
    }

    #[test]
    fn refuses_entries_that_escape() {
        let dir = crate::testutil::tempdir("tarevil");
        let dest = dir.join("dest");
        fs::create_dir(&dest).unwrap();
        let archive = evil_archive(&[
            ("../outside.txt", EntryType::Regular, "bad"),
            ("/abs.txt", EntryType::Regular, "bad"),
            ("ok/../../x", EntryType::Regular, "bad"),
            ("link", EntryType::Symlink, ".."),
            ("link/through.txt", EntryType::Regular, "bad"),
            ("hard", EntryType::Link, "../outside"),
            ("fine.txt", EntryType::Regular, "good"),
        ]);
        let (code, _, err) = tar_io(&["xf", "-", "-C", s(&dest)], &archive);
        assert_eq!(code, 2);
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(
            lines,
            [
                "busybox: tar: ../outside.txt: refusing to extract a name containing '..'",
                "busybox: tar: /abs.txt: refusing to extract an absolute name",
                "busybox: tar: ok/../../x: refusing to extract a name containing '..'",
                "busybox: tar: link/through.txt: refusing to extract through the symbolic link 'link'",
                "busybox: tar: hard: link target: refusing to extract a name containing '..'",
            ]
        );
        assert!(!dir.join("outside.txt").exists());
        assert!(!dir.join("through.txt").exists());
        assert_eq!(fs::read_to_string(dest.join("fine.txt")).unwrap(), "good");
        // The symlink itself may point anywhere.
        assert_eq!(fs::read_link(dest.join("link")).unwrap(), Path::new(".."));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn argument_errors() {
        let (code, _, err) = tar_io(&["-f", "-"], b"");
        assert_eq!(code, 2);
        assert_eq!(
            err,
            "busybox: tar: you must specify one of the '-c', '-x' or '-t' options\n"
        );
        let (code, _, err) = tar_io(&["cf", "-"], b"");
        assert_eq!(
            (code, err.as_str()),
            (
                2,
                "busybox: tar: cowardly refusing to create an empty archive\n"
            )
        );
        let (code, _, err) = tar_io(&["xf", "/nonexistent.tar"], b"");
        assert_eq!(code, 2);
        assert_eq!(
            err,
            "busybox: tar: /nonexistent.tar: Cannot open: No such file or directory\n"
        );
        let (code, _, err) = tar_io(&["xf", "-", "-C", "/nonexistent-dir"], b"");
        assert_eq!(code, 2);
        assert_eq!(
            err,
            "busybox: tar: /nonexistent-dir: Cannot open: No such file or directory\n"
        );
        let (code, _, err) = tar_io(&["--bogus"], b"");
        assert_eq!(
            (code, err.as_str()),
            (2, "busybox: tar: unrecognized option '--bogus'\n")
        );
        let (code, _, err) = tar_io(&["xf", "-"], b"not a tar archive at all, just some text");
        assert_eq!(code, 2);
        assert!(err.starts_with("busybox: tar: -: "), "{err}");
        let (code, _, err) = tar_io(&["cf", "-", "/nonexistent/path"], b"");
        assert_eq!(code, 2);
        assert_eq!(
            err,
            "busybox: tar: removing leading '/' and '../' from member names\n\
             busybox: tar: nonexistent/path: Cannot stat: No such file or directory\n"
        );
    }
}
