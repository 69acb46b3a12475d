import itertools

import numpy as np
import pytest
import torch

from edgenas.nas.conditioning import device_descriptors
from edgenas.nas.generator import Generator, condition_vector


def test_probabilities_sum_to_one_and_beam_returns_the_most_likely():
    torch.manual_seed(0)
    decisions = (3, 2, 4)
    gen = Generator(decisions, condition_dim=5, hidden=16)
    cond = np.random.default_rng(0).normal(size=5).astype(np.float32)
    space = list(itertools.product(*(range(n) for n in decisions)))
    onehots = torch.zeros(len(space), sum(decisions))
    for row, choices in enumerate(space):
        for t, c in enumerate(choices):
            onehots[row, sum(decisions[:t]) + c] = 1.0
    with torch.no_grad():
        logp = gen.log_prob(torch.as_tensor(cond).expand(len(space), -1), onehots).numpy()
    assert np.exp(logp).sum() == pytest.approx(1.0, abs=1e-5)
    beam = gen.beam(cond, 5)
    assert len(set(beam)) == 5
    best5 = [space[i] for i in np.argsort(-logp)[:5]]
    assert beam == best5  # with 3 steps and a wide enough beam, beam search is exact here
    assert set(gen.beam(cond, 100)) == set(space)


def test_distilled_generator_proposes_what_the_predictors_rank_best(synthetic_trained):
    bench, trained = synthetic_trained
    x, src, lat = bench.encodings(), bench.accuracy["cifar10"], bench.latency["dev5"]
    rows = {r.tobytes(): i for i, r in enumerate(x)}
    offsets = np.r_[0, np.cumsum(trained.generator.decisions)][:-1]
    rng = np.random.default_rng(1)
    hits = []
    for trial in range(10):
        s = rng.choice(len(x), 10, replace=False)
        head, unit = trained.model.head(device_descriptors("dev5"), x[s], lat[s])
        predicted = trained.model.predict(device_descriptors("dev5"), x[s], lat[s], x).ms
        accuracy = trained.task.predict(src, x, [], [])
        budget = float(np.percentile(predicted, [25, 50, 75][trial % 3]))
        fits = np.flatnonzero(predicted <= budget)
        best = int(fits[np.argmax(accuracy[fits])])
        proposals = set()
        for choices in trained.generator.beam(condition_vector(head, trained.task.head(src, x, [], []),
                                                               budget / unit, None), 512):
            encoding = np.zeros(x.shape[1], np.float32)
            encoding[offsets + np.asarray(choices)] = 1.0
            proposals.add(rows.get(encoding.tobytes()))
        hits.append(best in proposals)
    assert np.mean(hits) >= 0.8
