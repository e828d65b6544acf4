"""One trial per GPU: parallel sweep jobs claim distinct GPUs and wait when all are taken."""
import threading
import time

from deepdepth.devices import claim_gpu


def test_claims_are_exclusive_and_released(tmp_path):
    with claim_gpu(2, tmp_path) as first, claim_gpu(2, tmp_path) as second:
        assert {first, second} == {0, 1}
        got = []
        waiter = threading.Thread(target=lambda: got.append(_claim_once(tmp_path)))
        waiter.start()
        time.sleep(0.3)
        assert not got  # both GPUs busy: the third job waits
    waiter.join(timeout=5)
    assert got and got[0] in (0, 1)


def _claim_once(lock_dir):
    with claim_gpu(2, lock_dir, poll=0.05) as index:
        return index
