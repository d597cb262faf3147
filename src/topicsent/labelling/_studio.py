"""Label Studio interoperability, in its documented JSON formats (labelstud.io/guide/
task_format and /guide/predictions; no Label Studio server or SDK is needed).

- :func:`label_config`: the labelling interface to paste into a Label Studio project:
  the review text and one single-choice ``Choices`` control per category (its polarity;
  no choice = not mentioned), or one ``Choices`` control named ``rating``.
- :func:`studio_tasks`: one task per review, ``data = {"text", "review_id"}``, with the
  model's answers as ``predictions`` (pre-annotations: ``model_version``, ``score`` and
  ``result`` items ``{"from_name", "to_name", "type": "choices", "value": {"choices": [...]}}``).
- :func:`import_studio`: a Label Studio JSON export (tasks with ``annotations``) back
  into the project as labels; each task's newest annotation that was not cancelled counts.
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import quoteattr

from topicsent.errors import InputDataError
from topicsent.labelling._project import LabelProject
from topicsent.schema import Task

TEXT_NAME = "text"
RATING_NAME = "rating"
SOURCE = "label-studio"


def _controls(project: LabelProject) -> dict[str, list[str]]:
    """Control name -> its choices."""
    if project.task is Task.RATING:
        return {RATING_NAME: [str(r) for r in project.space.ratings]}
    return {category: list(project.space.polarities) for category in project.space.categories}


def label_config(project: LabelProject) -> str:
    """The Label Studio labelling configuration (XML) matching the tasks and imports."""
    lines = ["<View>", f'  <Text name="{TEXT_NAME}" value="$text"/>']
    for name, choices in _controls(project).items():
        lines.append(f"  <Header value={quoteattr(name)}/>")
        lines.append(f'  <Choices name={quoteattr(name)} toName="{TEXT_NAME}" choice="single" showInline="true">')
        lines += [f"    <Choice value={quoteattr(choice)}/>" for choice in choices]
        lines.append("  </Choices>")
    return "\n".join([*lines, "</View>"]) + "\n"


def _choice(name: str, value: str) -> dict[str, Any]:
    return {"from_name": name, "to_name": TEXT_NAME, "type": "choices", "value": {"choices": [value]}}


def studio_tasks(project: LabelProject) -> list[dict[str, Any]]:
    """Every review of the project as a Label Studio task, with the model's answer (if the
    project has one) as a prediction whose ``score`` is its confidence (of its least
    confident part; no ``score`` when the model gives none)."""
    tasks = []
    for review in project.reviews():
        task: dict[str, Any] = {"data": {"text": review.text, "review_id": review.id}}
        answer = project.item(review.id)["model_answer"]
        if answer is not None:
            if project.task is Task.RATING:
                result = [] if answer["rating"] is None else [_choice(RATING_NAME, str(answer["rating"]))]
            else:
                result = [_choice(a["aspect"], a["polarity"]) for a in answer["aspects"]]
            prediction = {"model_version": answer["model"], "result": result}
            if answer.get("confidence") is not None:
                prediction["score"] = answer["confidence"]
            task["predictions"] = [prediction]
        tasks.append(task)
    return tasks


def import_studio(project: LabelProject, export: Any, *, source: str = "the Label Studio export") -> int:
    """Store the labels of a Label Studio JSON export (a list of tasks). All are checked
    before any is stored; a label replaces the review's current one (the last write wins,
    both kept in the project's log). Tasks without a finished annotation are skipped.

    Returns
    -------
    int
        How many labels were stored.

    Raises
    ------
    InputDataError
        Not a list of tasks, a task without ``data.review_id``, a review id the project
        does not have, or a choice outside the taxonomy or scale: one line naming the task.
    """
    if not isinstance(export, list):
        raise InputDataError(f"{source}: expected a JSON list of tasks (Label Studio's JSON export)")
    controls = _controls(project)
    known = {review.id for review in project.reviews()}
    labels = []
    for number, task in enumerate(export, start=1):
        where = f"{source}: task {number}"
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict) or "review_id" not in task["data"]:
            raise InputDataError(f"{where} has no data.review_id; export tasks that came from `studio_tasks`")
        review_id = str(task["data"]["review_id"])
        if review_id not in known:
            raise InputDataError(f"{where}: project {project.name!r} has no review with id {review_id!r}")
        done = [a for a in task.get("annotations") or [] if isinstance(a, dict) and not a.get("was_cancelled")]
        if not done:
            continue
        annotation = max(done, key=lambda a: str(a.get("updated_at") or a.get("created_at") or ""))
        chosen: dict[str, str] = {}
        for item in annotation.get("result") or []:
            name = item.get("from_name") if isinstance(item, dict) else None
            choices = (item.get("value") or {}).get("choices") if isinstance(item, dict) else None
            if name not in controls:
                raise InputDataError(f"{where} (review {review_id!r}): {name!r} is not in the taxonomy ({', '.join(controls)})")
            if not isinstance(choices, list) or len(choices) != 1 or choices[0] not in controls[name]:
                raise InputDataError(
                    f"{where} (review {review_id!r}): {name} is {choices!r}; expected one of {', '.join(controls[name])}"
                )
            chosen[name] = choices[0]
        by = annotation.get("completed_by")
        by = by.get("email", by) if isinstance(by, dict) else by
        annotator = None if by is None else f"label-studio:{by}"
        if project.task is Task.RATING:
            if RATING_NAME not in chosen:
                continue  # an annotation without a rating says nothing to learn from
            labels.append((review_id, [], int(chosen[RATING_NAME]), None, annotator))
        else:
            aspects = [{"aspect": name, "polarity": polarity} for name, polarity in chosen.items()]
            labels.append((review_id, aspects, None, None, annotator))
    return len(project.save_labels(labels, source=SOURCE)) if labels else 0
