//! Output paths, checked before any work: a command that would train for an hour and then
//! fail to write its result, or write over one of its own inputs, fails at once instead, naming
//! the path given. The writing itself (a temporary file, then a rename) is
//! [`write_atomic`].

use std::io::Write;
use std::path::Path;

/// The temporary file [`write_atomic`] writes `path` through.
pub fn tmp_path(path: &str) -> String {
    format!("{path}.tmp")
}

/// The JSON copy of a checkpoint's config, written beside the checkpoint `path`.
pub fn json_copy_path(path: &str) -> String {
    format!("{path}.json")
}

/// The folder `path` is written in (`.` for a bare file name).
fn folder(path: &str) -> &Path {
    match Path::new(path).parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Check, without writing anything, that `path` (`what`, e.g. `--out`, in messages) can be
/// written by [`write_atomic`]: a file name (not empty, not a folder), in a
/// folder that exists, whose temporary file `<path>.tmp` is not a folder either.
pub fn check_target(what: &str, path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err(format!("{what}: the path is empty"));
    }
    if path.ends_with('/') || Path::new(path).is_dir() {
        return Err(format!(
            "{what} {path}: names a folder, not a file; give the path of a file to write"
        ));
    }
    let dir = folder(path);
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(format!("{what} {path}: {} is not a folder", dir.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "{what} {path}: the folder {} does not exist",
                dir.display()
            ))
        }
        Err(e) => return Err(format!("{what} {path}: folder {}: {e}", dir.display())),
    }
    let tmp = tmp_path(path);
    if Path::new(&tmp).is_dir() {
        return Err(format!(
            "{what} {path}: its temporary file {tmp} is a folder; move it out of the way"
        ));
    }
    Ok(())
}

/// [`check_target`], then that the folder lets a file be created there: `<path>.tmp` is
/// created and removed (a temporary file left by a crash is opened, not removed), so that a
/// read-only folder fails now rather than after the work.
pub fn check_output(what: &str, path: &str) -> Result<(), String> {
    check_target(what, path)?;
    let tmp = tmp_path(path);
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp);
    let result = match created {
        Ok(_) => std::fs::remove_file(&tmp),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::OpenOptions::new().write(true).open(&tmp).map(drop)
        }
        Err(e) => Err(e),
    };
    result.map_err(|e| {
        format!(
            "{what} {path}: cannot write in {}: {e}",
            folder(path).display()
        )
    })
}

/// Whether `a` and `b` name the same existing file: the same path, or two names (links) of
/// one file.
pub fn same_file(a: &str, b: &str) -> bool {
    let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b)) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        x.dev() == y.dev() && x.ino() == y.ino()
    }
    #[cfg(not(unix))]
    {
        let _ = (x, y);
        matches!(
            (std::fs::canonicalize(a), std::fs::canonicalize(b)),
            (Ok(p), Ok(q)) if p == q
        )
    }
}

/// Refuse to write `out` (`what`) when it, or its temporary file ([`tmp_path`]), is one of
/// `inputs` (`(flag, path)`): the write would replace that input (the data, a model) with the
/// output.
pub fn check_not_input(what: &str, out: &str, inputs: &[(&str, &str)]) -> Result<(), String> {
    let tmp = tmp_path(out);
    let written = [
        (out, format!("{what} {out}")),
        (&tmp, format!("{what} {out}: its temporary file {tmp}")),
    ];
    for (path, name) in written {
        if let Some((flag, input)) = inputs.iter().find(|(_, input)| same_file(path, input)) {
            return Err(format!(
                "{name} is the same file as {flag} {input}; writing it would replace that \
                 input, so give another output path"
            ));
        }
    }
    Ok(())
}

/// Write `bytes` to `path` through a temporary file in the same folder and a rename: `path`
/// holds either its previous content or all of `bytes`, never a part. On failure (also of the
/// rename) the temporary file is removed and `path` is untouched.
pub fn write_atomic(path: &str, bytes: &[u8]) -> Result<(), String> {
    let tmp = tmp_path(path);
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    };
    if let Err(e) = write() {
        // Only a file of ours is removed (not, say, a folder someone put there).
        if std::fs::metadata(&tmp).is_ok_and(|m| m.is_file()) {
            let _ = std::fs::remove_file(&tmp);
        }
        return Err(format!("{tmp}: {e}"));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("{path}: {e}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_in_missing_folders_or_that_are_folders_are_refused() {
        let dir = std::env::temp_dir().join(format!("bnf-paths-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        let p = |name: &str| dir.join(name).to_str().unwrap().to_string();
        check_output("--out", &p("x.safetensors")).unwrap();
        assert!(!Path::new(&p("x.safetensors.tmp")).exists());
        let err = check_output("--out", &p("nope/x.safetensors")).unwrap_err();
        assert!(
            err.contains(&format!("the folder {} does not exist", p("nope"))),
            "{err}"
        );
        for folderish in [p("sub"), format!("{}/", p("sub")), format!("{}/", p("new"))] {
            let err = check_output("--out", &folderish).unwrap_err();
            assert!(err.contains("names a folder"), "{err}");
        }
        std::fs::write(p("file"), b"x").unwrap();
        let err = check_output("--out", &p("file/x.safetensors")).unwrap_err();
        assert!(err.contains("is not a folder"), "{err}");
        std::fs::create_dir(p("y.tmp")).unwrap();
        let err = check_output("--out", &p("y")).unwrap_err();
        assert!(err.contains("y.tmp is a folder"), "{err}");
        // A crash's leftover temporary file is kept (the write replaces it later).
        std::fs::write(p("z.tmp"), b"partial").unwrap();
        check_output("--out", &p("z")).unwrap();
        assert_eq!(std::fs::read(p("z.tmp")).unwrap(), b"partial");
        assert!(check_output("--out", "").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn same_file_sees_through_names() {
        let dir = std::env::temp_dir().join(format!("bnf-same-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let p = |name: &str| dir.join(name).to_str().unwrap().to_string();
        std::fs::write(p("a"), b"a").unwrap();
        std::fs::write(p("b"), b"a").unwrap();
        std::fs::hard_link(p("a"), p("hard")).unwrap();
        assert!(same_file(&p("a"), &p("a")));
        assert!(same_file(&p("a"), &format!("{}/./a", dir.display())));
        assert!(same_file(&p("a"), &p("hard")));
        assert!(!same_file(&p("a"), &p("b")));
        assert!(!same_file(&p("a"), &p("missing")));
        let err = check_not_input(
            "--out",
            &p("hard"),
            &[("--model", &p("b")), ("--data", &p("a"))],
        )
        .unwrap_err();
        assert!(err.contains("same file as --data"), "{err}");
        check_not_input("--out", &p("b"), &[("--data", &p("a"))]).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
