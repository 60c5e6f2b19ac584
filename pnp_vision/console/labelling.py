"""Labelling a recording in the browser: one question at a time, fast.

Each frame is shown as the template's own view (the crop the model sees, made small on the
server), with its label and, beside it, the model's answer; frames come a page at a time and
can be filtered by scene, unlabelled, one answer, or disagreeing with the model. Labels go to the
recording's `labels.jsonl` through the one label store `pnp-vision label`, `eval` and `train`
use.

The model's answers come from the worker like any controller's (the frame file sent inline),
asked by one background thread, the current page first, with `keep: false` so they never push
the line's own inspections out of the worker's history. They are tied to the model generation
that gave them: after a reload they are asked again.
"""

from __future__ import annotations

import io
import json
import logging
import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2

from pnp_vision.capture.sources import read_index
from pnp_vision.console.link import WorkerLink, new_id
from pnp_vision.errors import BadRequest, PnpVisionError
from pnp_vision.evaluation.labels import load_labels_if_any, save_labels, with_answer
from pnp_vision.inspect.imageprep import template_view
from pnp_vision.inspect.templates import Template, TemplateSet
from pnp_vision.protocol.requests import InspectRequest, InspectResult

log = logging.getLogger(__name__)

_NAME_OK = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
THUMB_WIDTH = 224  # wider views (448x336) are halved; the 112x84 ones are sent as they are
SHOW = ("all", "unlabelled", "disagree")
Question = tuple[str, str, str]  # recording, template, params as sorted JSON


class Recordings:
    def __init__(
        self, root: Path, templates: TemplateSet, predictions: Predictions | None = None
    ) -> None:
        self.root = root
        self.templates = templates
        self.predictions = predictions
        self._thumbs: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")
        )

    def folder(self, name: str) -> Path:
        if not name or set(name) - _NAME_OK or name.startswith("."):
            raise BadRequest(f"recording name {name!r}: letters, digits, _ . - only")
        folder = self.root / name
        if not folder.is_dir():
            raise BadRequest(f"no recording {name!r} in {self.root}")
        return folder

    def question(self, template_name: str, params: dict[str, str]) -> Template:
        template = self.templates.get(template_name)
        template.render(params)  # the parameters are checked, as the worker would
        return template

    # -- one page -----------------------------------------------------------------------------

    def page(
        self,
        name: str,
        template_name: str,
        params: dict[str, str],
        *,
        show: str = "all",
        scene: str = "",
        page: int = 0,
        per_page: int = 24,
    ) -> dict[str, Any]:
        folder = self.folder(name)
        template = self.question(template_name, params)
        if show not in SHOW and show not in template.answers:
            raise BadRequest(f"show {show!r}: one of {', '.join(SHOW + tuple(template.answers))}")
        per_page = max(1, min(per_page, 96))
        frames = self._frames(folder, name, template, params)
        scenes = sorted({f["scene"] for f in frames if f["scene"]})
        matching = [f for f in frames if _shown(f, show, scene)]
        pages = max(1, math.ceil(len(matching) / per_page))
        page = max(0, min(page, pages - 1))
        shown = matching[page * per_page : (page + 1) * per_page]
        if self.predictions is not None:
            self.predictions.want(
                (name, template.name, _params_key(params)),
                folder,
                [(f["seq"], f["file"]) for f in shown] + [(f["seq"], f["file"]) for f in frames],
            )
        return {
            "name": name,
            "template": template.name,
            "params": params,
            "answers": list(template.answers),
            "view": list(template.view) if template.view else None,
            "scenes": scenes,
            "counts": _counts(frames, template.answers),
            "frames": shown,
            "page": page,
            "pages": pages,
            "per_page": per_page,
            "matching": len(matching),
        }

    def _frames(
        self, folder: Path, name: str, template: Template, params: dict[str, str]
    ) -> list[dict[str, Any]]:
        labels = {f.seq: f for f in load_labels_if_any(folder)}
        key = (name, template.name, _params_key(params))
        frames = []
        for entry in read_index(folder):
            labelled = labels.get(entry.seq)
            answer = None
            if labelled is not None:
                for q in labelled.questions:
                    if q.template == template.name and q.params == params:
                        answer = q.answer
            model = self.predictions.get(key, entry.seq) if self.predictions else None
            frames.append(
                {
                    "seq": entry.seq,
                    "file": entry.file.name,
                    "scene": labelled.scene if labelled is not None else "",
                    "label": answer,
                    "model": model,
                }
            )
        return frames

    # -- thumbnails and labels ----------------------------------------------------------------

    def thumbnail(self, name: str, seq: int, template_name: str) -> bytes:
        """The template's view of one frame as a small JPEG: what the model sees, what the
        operator labels (the view does not depend on the question's parameters)."""
        folder = self.folder(name)
        template = self.templates.get(template_name)
        key = (name, seq, template.name)
        with self._lock:
            if key in self._thumbs:
                self._thumbs.move_to_end(key)
                return self._thumbs[key]
        path = _entry(folder, seq).file
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise BadRequest(f"cannot read frame {path.name} of recording {name!r}")
        view = template_view(image, template)
        if view.width > THUMB_WIDTH:
            view = view.resize((THUMB_WIDTH, max(1, round(view.height * THUMB_WIDTH / view.width))))
        out = io.BytesIO()
        view.save(out, format="JPEG", quality=80)
        data = out.getvalue()
        with self._lock:
            self._thumbs[key] = data
            while len(self._thumbs) > 1024:
                self._thumbs.popitem(last=False)
        return data

    def frame_file(self, name: str, seq: int) -> Path:
        return _entry(self.folder(name), seq).file

    def label(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        folder = self.folder(name)
        try:
            seq, template_name = int(body["seq"]), str(body["template"])
            params = {str(k): str(v) for k, v in (body.get("params") or {}).items()}
            answer = str(body["answer"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BadRequest(f"label needs seq, template, params and answer: {exc}") from exc
        template = self.question(template_name, params)
        if answer not in template.answers:
            raise BadRequest(f"{answer!r} is not an answer of {template_name}: {template.answers}")
        entry = _entry(folder, seq)
        labels = with_answer(
            load_labels_if_any(folder),
            seq=seq,
            file=entry.file.name,
            template=template_name,
            params=params,
            answer=answer,
        )
        save_labels(folder, labels)
        log.info(
            "label recording=%s seq=%d template=%s answer=%s", name, seq, template_name, answer
        )
        frames = self._frames(folder, name, template, params)
        return {"seq": seq, "answer": answer, "counts": _counts(frames, template.answers)}


class Predictions:
    """The model's answer for each frame of the question being labelled; see the module
    docstring. `identity()` gives the model generation answering now (None: no worker)."""

    def __init__(self, link: WorkerLink, identity: Callable[[], tuple[str, int] | None]) -> None:
        self.link = link
        self.identity = identity
        self._answers: dict[tuple[Question, int], tuple[tuple[str, int], dict[str, Any]]] = {}
        self._job: tuple[Question, Path, list[tuple[int, str]]] | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="console-predict", daemon=True)
        self._thread.start()

    def want(self, question: Question, folder: Path, frames: list[tuple[int, str]]) -> None:
        with self._lock:
            self._job = (question, folder, list(dict.fromkeys(frames)))
        self._wake.set()

    def get(self, question: Question, seq: int) -> dict[str, Any] | None:
        identity = self.identity()
        with self._lock:
            found = self._answers.get((question, seq))
        if found is None or found[0] != identity:
            return None
        return found[1]

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            with self._lock:
                job = self._job
            if job is not None:
                self._work(*job)

    def _work(self, question: Question, folder: Path, frames: list[tuple[int, str]]) -> None:
        name, template, params = question
        for seq, file in frames:
            identity = self.identity()
            if identity is None or self._stop.is_set() or self._wake.is_set():
                return  # no worker, stopping, or another question wanted: start over
            with self._lock:
                found = self._answers.get((question, seq))
            if found is not None and found[0] == identity:
                continue
            try:
                request = InspectRequest(
                    id=new_id("label"),
                    image=True,
                    template=template,
                    params=json.loads(params),
                    keep=False,
                )
                reply = self.link.request(request, (folder / file).read_bytes(), timeout_s=30.0)
                result = InspectResult.model_validate(reply.result).results[0]
            except (PnpVisionError, OSError) as exc:
                log.info("console: no model answer for %s seq %d: %s", name, seq, exc)
                return  # asked again on the next page request
            answer = {
                "answer": result.answer,
                "probability": round(result.probabilities[result.answer], 4),
                "confident": result.confident,
                "trained": result.trained,
                "familiar": result.familiar,
            }
            with self._lock:
                self._answers[(question, seq)] = (identity, answer)


def _entry(folder: Path, seq: int) -> Any:
    for entry in read_index(folder):
        if entry.seq == seq:
            return entry
    raise BadRequest(f"recording {folder.name!r} has no frame {seq}")


def _params_key(params: dict[str, str]) -> str:
    return json.dumps(params, sort_keys=True)


def _shown(frame: dict[str, Any], show: str, scene: str) -> bool:
    if scene and frame["scene"] != scene:
        return False
    if show == "unlabelled":
        return frame["label"] is None
    if show == "disagree":
        model = frame["model"]
        return (
            frame["label"] is not None and model is not None and model["answer"] != frame["label"]
        )
    if show != "all":
        return frame["label"] == show
    return True


def _counts(frames: list[dict[str, Any]], answers: list[str]) -> dict[str, Any]:
    labelled = {answer: 0 for answer in answers}
    disagree = predicted = 0
    for f in frames:
        if f["label"] in labelled:
            labelled[f["label"]] += 1
        if f["model"] is not None:
            predicted += 1
            if f["label"] is not None and f["model"]["answer"] != f["label"]:
                disagree += 1
    return {
        "labelled": labelled,
        "left": len(frames) - sum(labelled.values()),
        "total": len(frames),
        "predicted": predicted,
        "disagree": disagree,
    }
