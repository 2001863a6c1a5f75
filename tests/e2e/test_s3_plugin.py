"""e2e: the s3 plugin through `weir dags test` against the SigV4-verifying S3 test server
(ctest fixture "s3", settings in the file named by WEIR_TEST_S3_ENV): create_bucket, put
(a glob and an odd key), wait, list (XCom), copy, get, delete; the connection comes from
WEIR_CONN_<ID> as a URI. Also: a wrong secret and a sensor timeout fail clearly."""
import os
import shlex
import unittest
import urllib.parse
import uuid

from weirtest import WeirTest, main


def s3_settings():
    path = os.environ.get("WEIR_TEST_S3_ENV")
    if not path or not os.path.exists(path):
        raise unittest.SkipTest("no S3 fixture (WEIR_TEST_S3_ENV)")
    env = {}
    with open(path) as f:
        for line in f:
            if "=" in line:
                k, v = line.strip().split("=", 1)
                env[k] = shlex.split(v)[0] if v else ""
    return env


def conn_uri(s3, secret=None):
    """s3://KEY:SECRET@HOST:PORT/?region_name=...&path_style=true&secure=false"""
    hostport = urllib.parse.urlsplit(s3["S3_ENDPOINT"]).netloc
    q = lambda v: urllib.parse.quote(v, safe="")
    return (f"s3://{q(s3['S3_ACCESS_KEY'])}:{q(secret or s3['S3_SECRET_KEY'])}@{hostport}/"
            f"?region_name={s3['S3_REGION']}&path_style=true&secure=false")


class S3PluginTest(WeirTest):
    def setUp(self):
        super().setUp()
        self.s3 = s3_settings()
        self.bucket = "weir-e2e-" + uuid.uuid4().hex[:10]
        self.w.env["WEIR_CONN_S3TEST"] = conn_uri(self.s3)
        # Airflow's form, with the endpoint in extra.
        self.w.env["WEIR_CONN_S3_AIRFLOW"] = (
            f"aws://{urllib.parse.quote(self.s3['S3_ACCESS_KEY'], safe='')}:"
            f"{urllib.parse.quote(self.s3['S3_SECRET_KEY'], safe='')}@/?endpoint_url="
            f"{urllib.parse.quote(self.s3['S3_ENDPOINT'], safe='')}"
            f"&region_name={self.s3['S3_REGION']}")

    def logs(self, dag, task):
        run = self.w.runs(dag)[0]["dag_run_id"]
        return self.w.run("tasks", "logs", dag, run, task, check=0).stdout

    def test_pipeline(self):
        data = os.path.join(self.w.tmp, "data")
        out = os.path.join(self.w.tmp, "out")
        b = self.bucket
        self.w.write_dag("s3flow.yaml", f"""dag: s3flow
tasks:
  bucket: {{run: s3.create_bucket, with: {{bucket: {b}, conn_id: s3test}}}}
  make:
    run: shell.run
    with:
      command: |
        mkdir -p {data} && printf 'a,1\\n' > {data}/a.csv && printf 'b,2\\n' > {data}/b.csv
        printf 'odd key body' > '{data}/one file.txt'
        head -c 9437184 /dev/zero > {data}/big.bin
  put_glob:
    run: s3.put
    needs: [bucket, make]
    with: {{src: "{data}/*.csv", dest: "s3://{b}/raw/{{{{ ds }}}}/", content_type: text/csv,
           conn_id: s3test}}
  put_odd:
    run: s3.put
    needs: [bucket, make]
    with: {{src: "{data}/one file.txt", dest: "s3://{b}/odd/\u00e9 one+two.txt", conn_id: s3test}}
  put_big:
    run: s3.put
    needs: [bucket, make]
    with: {{src: "{data}/big.bin", dest: "s3://{b}/big/", multipart_threshold: 5242880,
           part_size: 5242880, conn_id: s3_airflow}}
  wait:
    run: s3.wait
    needs: [put_glob]
    with: {{url: "s3://{b}/raw/{{{{ ds }}}}/b.csv", poke_interval: 0.5, timeout: 30,
           conn_id: s3test}}
  list:
    run: s3.list
    needs: [wait, put_odd, put_big]
    with: {{url: "s3://{b}/", page_size: 2, conn_id: s3test}}
  show:
    run: shell.run
    needs: [list]
    with: {{command: "echo 'listed={{{{ xcom(\\"list\\") | tojson }}}}'"}}
  copy:
    run: s3.copy
    needs: [put_glob]
    with: {{src: "s3://{b}/raw/{{{{ ds }}}}/a.csv", dest: "s3://{b}/copied/", conn_id: s3test}}
  get:
    run: s3.get
    needs: [copy]
    with: {{src: "s3://{b}/copied/a.csv", dest: "{out}/", conn_id: s3test}}
  get_odd:
    run: s3.get
    needs: [put_odd]
    with: {{src: "s3://{b}/odd/\u00e9 one+two.txt", dest: "{out}/odd.txt", conn_id: s3test}}
  delete:
    run: s3.delete
    needs: [list, get, show]
    with: {{url: "s3://{b}/raw/", recursive: true, conn_id: s3test}}
  after:
    run: s3.list
    needs: [delete]
    with: {{url: "s3://{b}/raw/", conn_id: s3test}}
  show_after:
    run: shell.run
    needs: [after]
    with: {{command: "echo 'after={{{{ xcom(\\"after\\") | tojson }}}}'"}}
""")
        p = self.w.run("dags", "test", "s3flow", "2026-03-04", timeout=240)
        self.assertEqual(p.returncode, 0, f"{p.stdout}\n{p.stderr}")
        with open(os.path.join(out, "a.csv")) as f:
            self.assertEqual(f.read(), "a,1\n")
        with open(os.path.join(out, "odd.txt")) as f:
            self.assertEqual(f.read(), "odd key body")
        listed = self.logs("s3flow", "show")
        for key in ("raw/2026-03-04/a.csv", "raw/2026-03-04/b.csv", "copied/a.csv",
                    "big/big.bin", "odd/\u00e9 one+two.txt"):
            if key.startswith("copied"):
                continue  # copy runs in parallel with list
            self.assertIn(key, listed)
        self.assertIn('after=[]', self.logs("s3flow", "show_after"))
        self.assertIn("found 's3://", self.logs("s3flow", "wait"))
        self.assertIn("deleted 2 object(s)", self.logs("s3flow", "delete"))

    def test_wrong_secret_fails_clearly(self):
        self.w.env["WEIR_CONN_S3BAD"] = conn_uri(self.s3, secret="wrong-secret")
        self.w.write_dag("bad.yaml", f"""dag: bad
tasks:
  ls: {{run: s3.list, with: {{url: "s3://{self.bucket}/", conn_id: s3bad}}}}
""")
        p = self.w.run("dags", "test", "bad", "2026-03-04", timeout=120)
        self.assertEqual(p.returncode, 1, p.stderr)
        logs = self.logs("bad", "ls")
        self.assertIn("SignatureDoesNotMatch", logs)
        self.assertNotIn("wrong-secret", logs)

    def test_missing_bucket_and_connection(self):
        self.w.write_dag("nb.yaml", f"""dag: nb
tasks:
  ls: {{run: s3.list, with: {{url: "s3://weir-no-such-bucket-{uuid.uuid4().hex[:6]}/", conn_id: s3test}}}}
  noconn: {{run: s3.list, with: {{url: "s3://x/", conn_id: nowhere}}}}
""")
        p = self.w.run("dags", "test", "nb", "2026-03-04", timeout=120)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("NoSuchBucket", self.logs("nb", "ls"))
        self.assertIn("connection 'nowhere' not found", self.logs("nb", "noconn"))

    def test_sensor_timeout(self):
        self.w.write_dag("sensor.yaml", f"""dag: sensor
tasks:
  bucket: {{run: s3.create_bucket, with: {{bucket: {self.bucket}, conn_id: s3test}}}}
  wait:
    run: s3.wait
    needs: [bucket]
    retries: 3
    with: {{url: "s3://{self.bucket}/never/there", poke_interval: 0.3, timeout: 1.5,
           conn_id: s3test}}
  soft:
    run: s3.wait
    needs: [bucket]
    with: {{url: "s3://{self.bucket}/never/", prefix: true, poke_interval: 0.3, timeout: 1,
           soft_fail: true, conn_id: s3test}}
""")
        p = self.w.run("dags", "test", "sensor", "2026-03-04", timeout=120)
        self.assertEqual(p.returncode, 1, p.stderr)
        run = self.w.runs("sensor")[0]["dag_run_id"]
        tis = {t["task_id"]: t for t in self.w.run_state("sensor", run)["task_instances"]}
        self.assertEqual(tis["wait"]["state"], "failed")
        self.assertEqual(tis["wait"]["try_number"], 1)  # a sensor timeout is not retried
        self.assertEqual(tis["soft"]["state"], "skipped")
        self.assertIn("did not appear within 1.5 s", self.logs("sensor", "wait"))


if __name__ == "__main__":
    main()
