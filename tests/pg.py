"""A throw-away PostgreSQL server for tests and benchmarks: Debian's binaries, a fresh data folder, a free loopback port.

`scripts/dev test` installs Debian's `postgresql` package when the binaries are missing (as root, with apt-get).
initdb and postgres refuse to run as root, so as root the server runs as the `postgres` user the package creates.

    with PostgresServer() as pg:
        url = pg.create_database("optuna")     # postgresql://postgres@127.0.0.1:PORT/optuna
"""
import glob, os, pwd, shutil, signal, socket, subprocess, tempfile, time
from pathlib import Path


def postgres_bin() -> Path | None:
    "The bin folder of the newest Debian PostgreSQL install, or None."
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    "A PostgreSQL server in a temporary folder, listening on 127.0.0.1 only; `stop()` (or leaving the `with`) removes it."

    def __init__(self, port: int | None = None):
        self.bin = postgres_bin()
        if self.bin is None:
            raise FileNotFoundError("PostgreSQL binaries not found (/usr/lib/postgresql/*/bin/postgres): "
                                    "install Debian's package, e.g. apt-get install -y postgresql")
        self.port = port or free_port()
        self.proc = None
        self.dir = Path(tempfile.mkdtemp(prefix="mlops-nb-pg-"))
        self.user = None
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            self.user = pw.pw_name
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)

    def _run(self, *args, **kw):
        return subprocess.run([str(a) for a in args], user=self.user, capture_output=True, text=True, **kw)

    @property
    def admin_url(self) -> str: return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, db: str, driver: str = "") -> str:
        "The URL of database `db`; `driver` (e.g. psycopg2) for tools that need it spelled out (SQLAlchemy 2.1 assumes psycopg 3)."
        return f"postgresql{'+' + driver if driver else ''}://postgres@127.0.0.1:{self.port}/{db}"

    def start(self, timeout: float = 30) -> "PostgresServer":
        data = self.dir / "data"
        p = self._run(self.bin / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync",
                      "--no-instructions", timeout=120)
        if p.returncode != 0: raise RuntimeError(f"initdb failed: {p.stderr.strip()}")
        self.log = open(self.dir / "postgres.log", "w")
        # durability off (a throw-away server), enough connections for several workers and an MLflow server
        self.proc = subprocess.Popen(
            [str(self.bin / "postgres"), "-D", str(data), "-p", str(self.port), "-k", str(self.dir),
             "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
             "-c", "full_page_writes=off", "-c", "max_connections=200"],
            user=self.user, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        import psycopg2
        t0 = time.monotonic()
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited ({self.proc.returncode}): {(self.dir / 'postgres.log').read_text()[-2000:]}")
            try:
                psycopg2.connect(self.admin_url, connect_timeout=2).close()
                return self
            except psycopg2.OperationalError:
                if time.monotonic() - t0 > timeout: self.stop(); raise TimeoutError(f"postgres not ready after {timeout} s")
                time.sleep(0.1)

    def create_database(self, name: str, driver: str = "") -> str:
        "Create database `name` (dropped first if it exists) and return its URL."
        import psycopg2
        con = psycopg2.connect(self.admin_url); con.autocommit = True
        try:
            with con.cursor() as c:
                c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                c.execute(f'CREATE DATABASE "{name}"')
        finally: con.close()
        return self.url(name, driver)

    def stop(self):
        "Fast shutdown (SIGINT), then remove the data folder."
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try: self.proc.wait(20)
            except subprocess.TimeoutExpired: self.proc.kill(); self.proc.wait()
        if getattr(self, "log", None): self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self): return self.start()
    def __exit__(self, *a): self.stop()


try:
    import pytest

    @pytest.fixture(scope="session")
    def postgres():
        "A throw-away PostgreSQL server for the session; skips only when the binaries cannot be had."
        if postgres_bin() is None:
            pytest.skip("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/postgres); "
                        "`bash scripts/dev test` installs it as root with apt-get")
        with PostgresServer() as pg:
            yield pg
except ImportError:   # used by a benchmark without pytest
    pass
