//! The `odm` command end to end: the built binary run against a throwaway
//! server (`odm::testing`), in a scratch folder, with a clean environment.
//!
//! Run: `cargo test -p green-odm-cli`

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use odm::testing::{
    shared_cluster, TempCluster, SCRAM_PASSWORD, SCRAM_USER, SUPERUSER, SUPERUSER_PASSWORD,
};

/// What one run of `odm` printed, and its exit code.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Panics, showing the output, unless the exit code is `code`.
    fn expect(self, code: i32) -> Run {
        assert_eq!(self.code, code, "exit code of odm: {self:#?}");
        self
    }
}

/// A scratch folder to run `odm` in, removed when dropped.
struct Workdir(PathBuf);

impl Workdir {
    fn new(name: &str) -> Workdir {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("odm-cli-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Workdir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    /// Runs `odm args` here with only `env` set (plus PATH and HOME,
    /// pointed at this folder so no real ~/.pgpass is read).
    fn odm(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let output = Command::new(env!("CARGO_BIN_EXE_odm"))
            .args(args)
            .current_dir(&self.0)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.0)
            .envs(env.iter().copied())
            .output()
            .expect("run odm");
        Run {
            code: output.status.code().expect("odm exited"),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        }
    }

    /// Overwrites `migrations/<file>` with `sql`.
    fn write_migration(&self, file: &str, sql: &str) {
        let path = self.0.join("migrations").join(file);
        assert!(path.exists(), "odm migrate add created {file}");
        std::fs::write(path, sql).unwrap();
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn cluster() -> &'static TempCluster {
    shared_cluster().expect("a test server")
}

/// A database name no other test uses.
fn fresh_name(what: &str) -> String {
    format!("odm_cli_{what}_{}", std::process::id())
}

#[test]
fn help_explains_every_command_where_the_url_comes_from_and_the_exit_codes() {
    let dir = Workdir::new("help");
    let help = dir.odm(&["--help"], &[]).expect(0).stdout;
    for needle in [
        "database",
        "migrate",
        "--database-url",
        "DATABASE_URL",
        ".env",
        "PGHOST",
        "~/.pgpass",
        "V<n>__<name>.sql",
        "U<n>__<name>.sql",
        "Exit codes",
        "3  no",
        "odm migrate run",
    ] {
        assert!(help.contains(needle), "--help lacks {needle:?}:\n{help}");
    }
    let migrate = dir.odm(&["migrate", "--help"], &[]).expect(0).stdout;
    for command in ["add", "run", "revert", "status", "check"] {
        assert!(migrate.contains(&format!("  {command} ")), "{migrate}");
    }
    let database = dir.odm(&["database", "--help"], &[]).expect(0).stdout;
    for command in ["create", "drop", "exists"] {
        assert!(database.contains(&format!("  {command} ")), "{database}");
    }
    let wrong = dir.odm(&["migrate", "sideways"], &[]).expect(2);
    assert!(
        wrong.stderr.contains("unrecognized subcommand"),
        "{wrong:?}"
    );
}

#[test]
fn a_database_is_created_migrated_checked_reverted_and_dropped_end_to_end() {
    let dir = Workdir::new("e2e");
    let name = fresh_name("e2e");
    let url = cluster().url_for(SUPERUSER, SUPERUSER_PASSWORD, &name);
    let env = [("DATABASE_URL", url.as_str())];
    let odm = |args: &[&str]| dir.odm(args, &env);

    // database create | exists
    let missing = odm(&["database", "exists"]).expect(3);
    assert!(missing.stdout.contains("does not exist"), "{missing:?}");
    let created = odm(&["database", "create"]).expect(0);
    assert!(
        created
            .stdout
            .contains(&format!("created database \"{name}\"")),
        "{created:?}"
    );
    odm(&["database", "exists"]).expect(0);
    let again = odm(&["database", "create"]).expect(0);
    assert!(again.stdout.contains("already exists"), "{again:?}");

    // migrate add: numbered files, with down scripts on request
    let added = odm(&["migrate", "add", "create users", "--down"]).expect(0);
    assert!(added.stdout.contains("V1__create_users.sql"), "{added:?}");
    assert!(added.stdout.contains("U1__create_users.sql"), "{added:?}");
    odm(&["migrate", "add", "add-user-email", "-r"]).expect(0);
    dir.write_migration(
        "V1__create_users.sql",
        "CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL);\n",
    );
    dir.write_migration("U1__create_users.sql", "DROP TABLE users;\n");
    dir.write_migration(
        "V2__add_user_email.sql",
        "ALTER TABLE users ADD COLUMN email text;\n",
    );
    dir.write_migration(
        "U2__add_user_email.sql",
        "ALTER TABLE users DROP COLUMN email;\n",
    );
    let bad_name = odm(&["migrate", "add", "drop; table"]).expect(2);
    assert!(
        bad_name.stderr.contains("invalid migration name"),
        "{bad_name:?}"
    );

    // status and check before running: pending, so check says no
    let status = odm(&["migrate", "status"]).expect(0);
    assert!(
        status.stdout.contains("create_users") && status.stdout.contains("pending"),
        "{status:?}"
    );
    let check = odm(&["migrate", "check"]).expect(3);
    assert!(
        check.stdout.contains("2 of 2 migrations differ"),
        "{check:?}"
    );

    // run: the dry run applies nothing, the run applies both
    let plan = odm(&["migrate", "run", "--dry-run"]).expect(0);
    assert!(
        plan.stdout.contains("would apply 1 create_users"),
        "{plan:?}"
    );
    assert!(
        plan.stdout.contains("would apply 2 add_user_email"),
        "{plan:?}"
    );
    odm(&["migrate", "check"]).expect(3);
    let run = odm(&["migrate", "run"]).expect(0);
    assert!(run.stdout.contains("applied 1 create_users"), "{run:?}");
    assert!(run.stdout.contains("applied 2 add_user_email"), "{run:?}");
    let check = odm(&["migrate", "check"]).expect(0);
    assert!(check.stdout.contains("ok: all 2 migrations"), "{check:?}");
    let rerun = odm(&["migrate", "run"]).expect(0);
    assert!(rerun.stdout.contains("nothing to apply"), "{rerun:?}");

    // revert: one step, then the rest
    let plan = odm(&["migrate", "revert", "--dry-run"]).expect(0);
    assert!(
        plan.stdout.contains("would revert 2 add_user_email"),
        "{plan:?}"
    );
    odm(&["migrate", "check"]).expect(0);
    let reverted = odm(&["migrate", "revert"]).expect(0);
    assert!(
        reverted.stdout.contains("reverted 2 add_user_email"),
        "{reverted:?}"
    );
    let status = odm(&["migrate", "status"]).expect(0);
    assert!(
        status.stdout.contains("applied") && status.stdout.contains("pending"),
        "{status:?}"
    );
    odm(&["migrate", "check"]).expect(3);
    odm(&["migrate", "run"]).expect(0);
    let reverted = odm(&["migrate", "revert", "--steps", "2"]).expect(0);
    assert!(
        reverted.stdout.contains("reverted 2 add_user_email"),
        "{reverted:?}"
    );
    assert!(
        reverted.stdout.contains("reverted 1 create_users"),
        "{reverted:?}"
    );

    // an edited applied migration: check lists it, run refuses
    odm(&["migrate", "run"]).expect(0);
    dir.write_migration(
        "V1__create_users.sql",
        "CREATE TABLE users (id bigserial PRIMARY KEY);\n",
    );
    let check = odm(&["migrate", "check"]).expect(3);
    assert!(check.stdout.contains("EDITED"), "{check:?}");
    let refused = odm(&["migrate", "run"]).expect(1);
    assert!(
        refused.stderr.contains("edited after it was applied"),
        "{refused:?}"
    );

    // database drop: only with --yes
    let unconfirmed = odm(&["database", "drop"]).expect(2);
    assert!(unconfirmed.stderr.contains("--yes"), "{unconfirmed:?}");
    odm(&["database", "exists"]).expect(0);
    let dropped = odm(&["database", "drop", "--yes"]).expect(0);
    assert!(
        dropped
            .stdout
            .contains(&format!("dropped database \"{name}\"")),
        "{dropped:?}"
    );
    odm(&["database", "exists"]).expect(3);
    let nothing = odm(&["database", "drop", "--yes"]).expect(0);
    assert!(nothing.stdout.contains("nothing to drop"), "{nothing:?}");
}

#[test]
fn the_url_comes_from_the_flag_then_database_url_then_dotenv_then_the_pg_variables() {
    let dir = Workdir::new("url");
    let name = fresh_name("url");
    let url = cluster().url_for(SUPERUSER, SUPERUSER_PASSWORD, &name);
    let wrong = cluster().url_for(SUPERUSER, SUPERUSER_PASSWORD, "no_such_db");
    dir.odm(&["--database-url", &url, "database", "create"], &[])
        .expect(0);
    // The flag wins over DATABASE_URL.
    dir.odm(
        &["database", "exists", "--database-url", &url],
        &[("DATABASE_URL", &wrong)],
    )
    .expect(0);
    dir.odm(&["database", "exists"], &[("DATABASE_URL", &wrong)])
        .expect(3);
    // A .env file, beneath DATABASE_URL of the process.
    std::fs::write(
        dir.path().join(".env"),
        format!("# local settings\nDATABASE_URL={url}\n"),
    )
    .unwrap();
    dir.odm(&["database", "exists"], &[]).expect(0);
    dir.odm(&["database", "exists"], &[("DATABASE_URL", &wrong)])
        .expect(3);
    std::fs::remove_file(dir.path().join(".env")).unwrap();
    // The PG* variables alone, with a password from ~/.pgpass.
    let port = cluster().port().to_string();
    let pg = [
        ("PGHOST", "127.0.0.1"),
        ("PGPORT", port.as_str()),
        ("PGUSER", SCRAM_USER),
        ("PGDATABASE", name.as_str()),
    ];
    let pgpass = dir.path().join(".pgpass");
    std::fs::write(
        &pgpass,
        format!("127.0.0.1:{port}:*:{SCRAM_USER}:{SCRAM_PASSWORD}\n"),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let found = dir.odm(&["database", "exists"], &pg).expect(0);
    assert!(
        found
            .stdout
            .contains(&format!("database \"{name}\" on 127.0.0.1:{port}")),
        "{found:?}"
    );
    // The PG* variables fill what a URL leaves out.
    let partial = format!("postgresql://127.0.0.1:{port}/{name}");
    dir.odm(
        &["database", "exists"],
        &[
            ("DATABASE_URL", partial.as_str()),
            ("PGUSER", SUPERUSER),
            ("PGPASSWORD", SUPERUSER_PASSWORD),
        ],
    )
    .expect(0);
    dir.odm(
        &[
            "database",
            "drop",
            "--yes",
            "--force",
            "--database-url",
            &url,
        ],
        &[],
    )
    .expect(0);
}

#[test]
fn failures_are_clear_messages_with_exit_code_one_and_never_show_the_password() {
    let dir = Workdir::new("fail");
    // A server that is not there.
    let nowhere = "postgresql://app:hunter2secret@127.0.0.1:1/app?connect_timeout=2";
    let down = dir
        .odm(&["database", "exists", "--database-url", nowhere], &[])
        .expect(1);
    assert!(down.stderr.starts_with("error: cannot connect"), "{down:?}");
    assert!(!down.stderr.contains("hunter2secret"), "{down:?}");
    // A malformed URL names where it came from.
    let bad = dir
        .odm(
            &["migrate", "status"],
            &[("DATABASE_URL", "postgresql://h:notaport/db")],
        )
        .expect(1);
    assert!(
        bad.stderr.contains("from DATABASE_URL is not valid"),
        "{bad:?}"
    );
    // No migrations folder.
    let url = cluster().url_for(SUPERUSER, SUPERUSER_PASSWORD, "postgres");
    let missing = dir
        .odm(
            &["migrate", "run", "--source", "nowhere"],
            &[("DATABASE_URL", &url)],
        )
        .expect(1);
    assert!(
        missing
            .stderr
            .contains("cannot read migrations from nowhere"),
        "{missing:?}"
    );
    // A .env line that does not parse is not shown.
    std::fs::write(
        dir.path().join(".env"),
        "DATABASE_URL='postgresql://u:hunter2secret@h/d\n",
    )
    .unwrap();
    let dotenv = dir.odm(&["migrate", "status"], &[]).expect(1);
    assert!(dotenv.stderr.contains(".env"), "{dotenv:?}");
    assert!(!dotenv.stderr.contains("hunter2secret"), "{dotenv:?}");
}
