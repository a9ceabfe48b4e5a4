"""Faults with real processes: vLLM killed mid-stream (the shopper gets a clear message and the products already
found, the turn is logged, the next turn works while it is down and once it is back), and a conversation-log writer
killed mid-write (at most the turn in flight is lost). Elsewhere: the Chroma server stopped and restarted
(tests/test_retrieval_chroma_server.py), a failed import leaves the old store byte-identical
(tests/test_store_import.py)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from assistant.events import TextChunk, TurnDone, Understood
from assistant.loop import Assistant, LoopConfig
from assistant.session import Session
from kefu.llm import server as vllm_server
from kefu.llm.client import LLM
from tests.conftest import REPO, conversation_log, real_services


class KillsTheServerMidStream:
    """The real client; while streaming the reply it SIGKILLs the vLLM process group after the first chunk."""

    def __init__(self, llm: LLM, settings) -> None:
        self.llm, self.settings, self.killed = llm, settings, False

    def __getattr__(self, name):
        return getattr(self.llm, name)

    def stream(self, messages, **kw):
        for i, chunk in enumerate(self.llm.stream(messages, **kw)):
            yield chunk
            if i == 0 and not self.killed:
                os.killpg(vllm_server.read_info(self.settings).pid, signal.SIGKILL)
                self.killed = True


@pytest.mark.llm
@pytest.mark.stops_llm
def test_vllm_killed_mid_stream(llm_settings, shop_settings, intent_classifier, tmp_path):
    if llm_settings.llm_url:
        pytest.skip("external server: not ours to kill")
    if not vllm_server.is_healthy(llm_settings.llm_base_url):  # an earlier stops_llm test stopped it
        vllm_server.start(llm_settings)
    llm = KillsTheServerMidStream(LLM(llm_settings.llm_base_url, llm_settings.llm_served_name, retries=0,
                                      timeout_s=20), llm_settings)  # fmt: skip
    log = conversation_log(tmp_path / "records.sqlite")
    services = real_services(shop_settings, tmp_path / "records.sqlite")
    assistant = Assistant(services, llm, LoopConfig(lead_in="model"), classifier=intent_classifier, log=log)
    session = Session(customer_id=None)

    events = list(assistant.turn(session, "crackers under $4"))
    done = events[-1]
    assert llm.killed and isinstance(done, TurnDone)
    assert done.products and all(c.price <= 4 for c in done.products)  # the products already found
    assert "my answer was cut off" in done.reply
    assert "".join(e.text for e in events if isinstance(e, TextChunk)) == done.reply
    assert [r["turn"] for r in log.turns(done.conversation_id)] == [1]  # the turn is logged

    down = list(assistant.turn(session, "pasta"))  # while it is down: the classifier and the rules answer
    assert down[-1].products and next(e for e in down if isinstance(e, Understood)).source.startswith("classifier")

    vllm_server.start(llm_settings)  # back (`kefu serve` says `kefu llm serve` until then)
    back = list(assistant.turn(session, "cheese"))
    assert back[-1].products and next(e for e in back if isinstance(e, Understood)).source.startswith("llm")
    assert [r["turn"] for r in log.turns(done.conversation_id)] == [1, 2, 3]


WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from kefu.records.conversations import ConversationLog, TurnRecord
    from kefu.records.db import Records
    log = ConversationLog(Records(Path(sys.argv[1])))
    n = 0
    while True:
        n += 1
        log.record(TurnRecord(conversation_id="crash", turn=n, customer_id=None, message="m" * 500,
                              reply="r" * 2000, product_ids=["1"] * 20))
        print(n, flush=True)
""")


def test_a_crash_while_writing_the_log_loses_at_most_the_turn_in_flight(tmp_path):
    from kefu.records.db import Records

    path = tmp_path / "records.sqlite"
    Records(path)  # migrated before the writer starts
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True,
                            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip
    confirmed = 0
    deadline = time.monotonic() + 60
    while confirmed < 200 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        assert line, "the writer died on its own"
        confirmed = int(line)
    os.kill(proc.pid, signal.SIGKILL)  # mid-write, most likely: it writes in a tight loop
    proc.wait()
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    turns = [r[0] for r in con.execute("SELECT turn FROM turns WHERE conversation_id = 'crash' ORDER BY turn")]
    assert turns == list(range(1, len(turns) + 1)) and len(turns) >= confirmed  # nothing confirmed was lost
    assert con.execute("SELECT count(*) FROM turns WHERE length(reply) <> 2000").fetchone()[0] == 0  # no torn row
    con.close()
    from kefu.records.conversations import ConversationLog

    assert len(ConversationLog(Records(path)).turns("crash")) == len(turns)  # and it opens again for writing
