"""Draw ``packages/ranch-redis/docs/dashboard.png``: ``ranch dashboard`` in headless Chromium
while a flood and five quiet tenants are served by a worker loop (a real redis-server).

    python scripts/dashboard_screenshot.py [--out packages/ranch-redis/docs/dashboard.png]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from ranch_core import FairScheduler
from ranch_redis import RedisStorage
from ranch_redis.testing import RedisServer
from selenium import webdriver
from selenium.webdriver.chrome.service import Service


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="packages/ranch-redis/docs/dashboard.png")
    args = parser.parse_args()
    with RedisServer() as server, socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        scheduler = FairScheduler(RedisStorage.from_url(server.url, namespace="celery:reports"))
        for start in range(0, 3000, 500):
            scheduler.push_many("bulk-import", list(range(start, start + 500)))
        for tenant in ("acme", "globex", "initech", "umbrella", "hooli"):
            scheduler.push_many(tenant, list(range(6)))
        scheduler.set_weight("acme", 0.5)
        scheduler.set_concurrency_limit("bulk-import", 2)
        scheduler.pause_key("hooli")
        stop = threading.Event()

        def work() -> None:  # one worker slot: 40 ms a call; the tenants come back now and then
            n = 0
            while not stop.is_set():
                task = scheduler.pop()
                if task is not None:
                    time.sleep(0.04)
                    scheduler.ack(task.task_id)
                n += 1
                if n % 20 == 0:
                    scheduler.push_many("globex", [n, n + 1, n + 2, n + 3])
                    scheduler.push_many("initech", [n, n + 1])

        worker = threading.Thread(target=work)
        worker.start()
        ranch = os.path.join(os.path.dirname(sys.executable), "ranch")
        env = {**os.environ, "RANCH_REDIS_URL": server.url}
        board = subprocess.Popen([ranch, "dashboard", "--port", str(port)], env=env)
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,1000"):
            options.add_argument(arg)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        try:
            time.sleep(1.0)
            driver.get(f"http://127.0.0.1:{port}/?refresh=1000")
            time.sleep(20.0)  # twenty points of the live chart
            driver.save_screenshot(args.out)
        finally:
            driver.quit()
            stop.set()
            worker.join()
            board.send_signal(signal.SIGTERM)
            board.wait()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
