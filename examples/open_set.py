"""Open-set recognition on the ORL / AT&T faces: people trained on, people enrolled later, strangers.

    python examples/open_set.py path/to/att_faces --roc open_set_roc.png

People s1-s30 are trained on (their images split 80/20, stratified, seed 42); s31-s40
are never seen in training. Each unseen person is enrolled from their first 5 images
and identified from their other 5 against the gallery of the trained and enrolled
people. Prints the three figures of the README's open-set section:

- closed-set accuracy on the test images of the trained people (the classifier);
- identification accuracy of the enrolled people (most similar identity, no rejection);
- verification EER over all pairs of the images of the unseen people;
- strangers let in: the images of the unseen people, before they are enrolled, that the
  model's default threshold names as one of the trained people;

``--open-set`` trains with ``pyface.train(open_set=True)`` instead, as a user would: the
same recipe, with a fifth of the trained people kept out to set the thresholds on; with it,
``--options`` changes the recipe where it names an option, where without it ``--options``
replaces the recipe.

``--unseen 1-10`` keeps other people out of training instead, and ``--trained 20``
trains on only the first 20 of the others (docs/experiments.md: how the EER depends
on who is unseen and on how many people are trained on).

and writes the ROC curve of that verification.
"""

import argparse
import json
import time

import numpy as np

from pyface import plots
from pyface.data import load_images
from pyface.recognition.open_set import equal_error_rate, pair_scores, roc_curve, select_people, tar_at_far
from pyface.training import OPEN_SET_RECIPE, train
from pyface.training.augment import Augmentation

PEOPLE = [f"s{k}" for k in range(1, 41)]
# The open-set recipe of pyface.train(open_set=True), chosen in docs/experiments.md ("Open
# set"), without its calibration people: here all of s1-s30 are trained on.
OPTIONS = {name: value.to_dict() if isinstance(value, Augmentation) else value
           for name, value in OPEN_SET_RECIPE.items()}


def enrolled_accuracy(model, unseen) -> float:
    """Enroll each unseen person from their first 5 images; the fraction of their other images named right."""
    enroll_part, test_part = unseen.split_first(5)
    for k, name in enumerate(unseen.names):
        model.enroll(name, enroll_part[enroll_part.labels == k])
    return float(np.mean(model.predict(test_part) == np.array(unseen.names)[test_part.labels]))


def people_range(text: str) -> list[str]:
    """The people "sA" .. "sB" of a range "A-B" of ORL person numbers."""
    try:
        first, last = (int(part) for part in text.split("-"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a range such as 31-40, got {text!r}") from None
    if not 1 <= first <= last <= len(PEOPLE):
        raise argparse.ArgumentTypeError(f"the range must lie within 1-{len(PEOPLE)}, got {text!r}")
    return PEOPLE[first - 1 : last]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="the att_faces folder (s1 .. s40)")
    parser.add_argument("--options", default=None,
                        help="keyword options of pyface.train, as JSON (default: the recipe; with --open-set, "
                             "options that change it)")
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument("--roc", default="open_set_roc.png", help="PNG of the verification ROC curve")
    parser.add_argument("--unseen", type=people_range, default=PEOPLE[30:], metavar="A-B",
                        help="the people never trained on, as a range of person numbers (default 31-40)")
    parser.add_argument("--open-set", action="store_true",
                        help="train with pyface.train(open_set=True), and --options if given")
    parser.add_argument("--trained", type=int, default=None, metavar="K",
                        help="train on the first K of the other people only (default: all of them)")
    args = parser.parse_args()
    trained = [name for name in PEOPLE if name not in args.unseen][: args.trained]
    if args.trained is not None and not 2 <= args.trained <= len(trained):
        parser.error(f"--trained must be between 2 and {len(trained)}, got {args.trained}")
    faces = load_images(args.folder)
    train_set, test_set = select_people(faces, trained).split(test_size=0.2, seed=42)
    unseen = select_people(faces, args.unseen)
    started = time.perf_counter()
    given = None if args.options is None else json.loads(args.options)
    if args.open_set:
        options = {**(given or {}), "open_set": True}
    else:
        options = OPTIONS if given is None else given
    model = train(train_set, seed=args.seed, quiet=True, **options)
    seconds = time.perf_counter() - started
    test_set = select_people(test_set, list(model.names))  # open_set=True keeps calibration people out
    closed = model.evaluate(test_set)["accuracy"]
    embedded = model.embed(unseen)  # pairs scored as model.verify scores them
    fpr, tpr, thresholds = roc_curve(*pair_scores(embedded, unseen.labels, offsets=model.score_offsets(embedded)))
    eer, at_eer = equal_error_rate(fpr, tpr, thresholds)
    let_in = int(np.sum(model.identify(unseen)[0] != "unknown"))  # before anyone unseen is enrolled
    identified = enrolled_accuracy(model, unseen)
    print(f"options {json.dumps(options)}, seed {args.seed}, trained in {seconds:.0f} s")
    people = len(model.names) + len(unseen.names)
    print(f"trained on {len(model.names)} people, never on {unseen.names[0]}-{unseen.names[-1]}")
    if model.descriptor is not None:
        print(f"joined with the {model.descriptor.kind} histograms at {model.descriptor.weight:g} of the cosine")
    chosen = (model.calibration or {}).get("cohort")
    if chosen is not None:  # the kept-out people's EER of plain and of normalized scores
        print(f"scores {'' if chosen['normalized'] else 'not '}normalized against the trained people "
              f"(kept-out people's EER {100 * chosen['eer'][0]:.2f}% plain, {100 * chosen['eer'][1]:.2f}% normalized)")
    print(f"closed-set accuracy, {len(model.names)} trained people: {100 * closed:.2f}% ({len(test_set)} images)")
    print(f"identification accuracy, {len(unseen.names)} enrolled people among {people}: {100 * identified:.2f}% "
          f"({len(unseen) - 5 * len(unseen.names)} images)")
    print(f"verification EER, all pairs of the unseen people: {100 * eer:.2f}% at score {at_eer:.3f} "
          f"(TAR at FAR 1%: {100 * tar_at_far(fpr, tpr, 0.01):.1f}%; model's threshold {model.verify_threshold:.3f})")
    print(f"strangers let in by the default threshold ({model.threshold:.3f}, measured on "
          f"{model.calibration['source']}): {let_in} of the {len(unseen)} images of the unseen people "
          f"({100 * let_in / len(unseen):.1f}%)")
    if not plots.matplotlib_available():
        print(f"no ROC picture: {plots.MISSING_MESSAGE}")  # the figures above stand without it
        return
    plots.save_roc_curve(fpr, tpr, args.roc, eer=eer, title=f"Verification, {len(unseen.names)} unseen people")
    print(f"wrote {args.roc}")


if __name__ == "__main__":
    main()
