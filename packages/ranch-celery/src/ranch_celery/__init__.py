"""Fair scheduling for Celery.

::

    from celery import Celery
    from ranch_celery import lru_task

    app = Celery("proj", broker="redis://localhost:6379/0", backend="redis://localhost:6379/1")

    @lru_task(app)
    def resize(image_id):
        ...

    resize.lru_delay("customer-42", image_id)   # fair across customers

See :func:`lru_task` and :class:`LRUTaskMixin`.
"""

from ranch_celery.state import EXPIRED_REASON, PRIORITIZE_TASK, RESUBMIT_TASK
from ranch_celery.task import LRUTaskMixin, lru_task

__version__ = "0.1.0"

__all__ = ["EXPIRED_REASON", "PRIORITIZE_TASK", "RESUBMIT_TASK", "LRUTaskMixin", "__version__", "lru_task"]
