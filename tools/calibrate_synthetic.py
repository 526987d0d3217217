"""Check that the synthetic corpus is neither trivial nor hopeless, with simple baselines.

Generates (or reuses) a synthetic corpus, then trains logistic regressions on the 4-class set
(neu, hap+exc, ang, sad):

* audio: per-utterance statistics from librosa (duration, RMS, YIN pitch over loud frames,
  13 MFCC means and stds, words per second);
* text: TF-IDF of word 1-2 grams;
* fusion: both feature sets concatenated;

under (a) leave-one-session-out and (b) the same test sessions where every scripted test
utterance is predicted by a model trained without its script (Pepino et al.'s session+script
folds); improvised test utterances use the (a) model in both. Prints UA (mean per-class
recall) per setting. Usage::

    python tools/calibrate_synthetic.py --out runs/calib --corpus-size demo
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np

CLASSES = {"neu": 0, "hap": 1, "exc": 1, "ang": 2, "sad": 3}
SUMMARY = re.compile(r"^\[[\d.]+ - [\d.]+\]\t(\S+)\t(\w{3})\t")
TRANS = re.compile(r"^(Ses\S+) \[[\d.]+-[\d.]+\]: (.*)$")


def load(root: Path) -> list[dict]:
    """Utterances of the 4-class set with session, script, text, label and wav path."""
    labels, texts = {}, {}
    for f in root.glob("Session*/dialog/EmoEvaluation/*.txt"):
        for ln in f.read_text().splitlines():
            m = SUMMARY.match(ln)
            if m:
                labels[m.group(1)] = m.group(2)
    for f in root.glob("Session*/dialog/transcriptions/*.txt"):
        for ln in f.read_text().splitlines():
            m = TRANS.match(ln)
            if m:
                texts[m.group(1)] = m.group(2).replace("[LAUGHTER]", " ").strip()
    out = []
    for utt, code in sorted(labels.items()):
        if code not in CLASSES:
            continue
        dialog = utt.rsplit("_", 1)[0]
        part = dialog.split("_", 1)[1]
        out.append({
            "id": utt, "session": int(utt[3:5]), "speaker": utt[:5] + utt[-4],
            "script": part[:8] if part.startswith("script") else None,
            "text": texts[utt], "y": CLASSES[code],
            "wav": root / f"Session{int(utt[3:5])}" / "sentences" / "wav" / dialog / f"{utt}.wav",
        })
    return out


def acoustic(path: Path, n_words: int) -> np.ndarray:
    import librosa

    y, sr = librosa.load(path, sr=16000)
    rms = librosa.feature.rms(y=y, frame_length=400, hop_length=160)[0]
    db = 20 * np.log10(rms + 1e-6)
    loud = db > db.max() - 25
    f0 = librosa.yin(y, fmin=60, fmax=450, sr=sr, frame_length=1024, hop_length=160)
    f0 = np.log(f0[: len(loud)][loud[: len(f0)]] + 1e-3)
    mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=13, n_fft=400, hop_length=160)
    dur = len(y) / sr
    return np.concatenate([
        [dur, n_words / dur, db[loud].mean(), db[loud].std(), db.max(), loud.mean()],
        [np.median(f0), f0.std(), np.percentile(f0, 90) - np.percentile(f0, 10)],
        mfcc.mean(1), mfcc.std(1),
    ])


def ua(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean([np.mean(p[y == c] == c) for c in np.unique(y)]))


def main() -> None:
    from scipy.sparse import csr_matrix, hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from workbench.corpus.synthetic import generate_corpus

    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--corpus-size", default="demo")
    ap.add_argument("--corpus-seed", type=int, default=0)
    ap.add_argument("--reuse", action="store_true", help="use an existing corpus in --out")
    args = ap.parse_args()
    root = Path(args.out) / "IEMOCAP_full_release"
    if not args.reuse:
        root = generate_corpus(args.out, corpus_size=args.corpus_size, corpus_seed=args.corpus_seed)
    utts = load(root)
    cache = Path(args.out) / "calib_features.npz"
    ids = np.array([u["id"] for u in utts])
    if cache.is_file() and np.array_equal(np.load(cache)["ids"], ids):
        xa = np.load(cache)["x"]
    else:
        from tqdm import tqdm

        xa = np.stack([acoustic(u["wav"], len(u["text"].split())) for u in tqdm(utts)])
        np.savez(cache, ids=ids, x=xa)
    y = np.array([u["y"] for u in utts])
    sess = np.array([u["session"] for u in utts])
    script = np.array([u["script"] or "" for u in utts])
    texts = [u["text"] for u in utts]
    print(f"{len(utts)} utterances in the 4-class set; class counts {np.bincount(y)}")

    def fit_predict(kind: str, tr: np.ndarray, te: np.ndarray) -> np.ndarray:
        parts_tr, parts_te = [], []
        if kind in ("audio", "fusion"):
            sc = StandardScaler().fit(xa[tr])
            parts_tr.append(csr_matrix(sc.transform(xa[tr])))
            parts_te.append(csr_matrix(sc.transform(xa[te])))
        if kind in ("text", "fusion"):
            tf = TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True)
            parts_tr.append(tf.fit_transform([texts[i] for i in tr]) * 3.0)
            parts_te.append(tf.transform([texts[i] for i in te]) * 3.0)
        clf = LogisticRegression(max_iter=2000, C=1.0, class_weight="balanced")
        clf.fit(hstack(parts_tr).tocsr(), y[tr])
        return clf.predict(hstack(parts_te).tocsr())

    for kind in ("audio", "text", "fusion"):
        res = {"a": [], "b": [], "a_scripted": [], "b_scripted": []}
        for k in np.unique(sess):
            te = np.where(sess == k)[0]
            pa = fit_predict(kind, np.where(sess != k)[0], te)
            pb = pa.copy()
            for s in np.unique(script[te]):
                if not s:
                    continue
                te_s = np.where((sess == k) & (script == s))[0]
                tr_s = np.where((sess != k) & (script != s))[0]
                pb[np.isin(te, te_s)] = fit_predict(kind, tr_s, te_s)
            scr = script[te] != ""
            res["a"].append(ua(y[te], pa))
            res["b"].append(ua(y[te], pb))
            res["a_scripted"].append(ua(y[te][scr], pa[scr]))
            res["b_scripted"].append(ua(y[te][scr], pb[scr]))
        print(f"{kind:7s} " + "  ".join(f"UA({k})={np.mean(v):.3f}" for k, v in res.items()))


if __name__ == "__main__":
    main()
