"""FedAvg: the split deals every image to one client; skew follows alpha; averaging weighs by image count; one
client is plain training; the server hands each client only its own images; accuracy rises over rounds."""
import numpy as np
import pytest
import torch

from dlplay.after_training import federated
from dlplay.after_training.federated import (
    LocalTraining,
    average_weights,
    centralised,
    client_indices,
    fedavg,
    federated_lab,
    split_clients,
)
from dlplay.data import Dataset, ImageSet, load_dataset
from dlplay.device import pick_device
from dlplay.models import build_model
from dlplay.training.trainer import Trainer, build_optimizer


@pytest.fixture(scope="module")
def small():
    """600 training and 300 test digits: quick rounds."""
    data = load_dataset("mnist5k")
    return (data, ImageSet(data.train.images[:600], data.train.labels[:600]),
            ImageSet(data.test.images[:300], data.test.labels[:300]))


def model_for(data, seed=0):
    mean, std = data.channel_stats()
    return build_model("small-cnn", data.input_shape, data.num_classes, mean, std, seed=seed)


@pytest.mark.parametrize("alpha", [None, 0.1, 1.0, 100.0])
@pytest.mark.parametrize("clients", [1, 3, 20])
def test_every_image_goes_to_exactly_one_client(alpha, clients):
    labels = load_dataset("mnist5k").train.labels
    parts = client_indices(labels, clients, alpha, seed=4)
    assert len(parts) == clients
    together = np.concatenate(parts)
    assert len(together) == len(labels) and len(np.unique(together)) == len(labels)
    if alpha is None:
        assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_a_small_alpha_gives_each_client_few_classes():
    labels = load_dataset("mnist5k").train.labels

    def mean_classes(alpha):
        parts = client_indices(labels, 10, alpha, seed=0)
        return np.mean([len(np.unique(labels.numpy()[p])) for p in parts if len(p)])

    assert mean_classes(0.05) < 4 < mean_classes(1.0) < mean_classes(100.0) <= mean_classes(None) == 10


def test_clients_hold_copies_of_their_own_images(small):
    _, train, _ = small
    indices = client_indices(train.labels, 4, 0.5, seed=1)
    clients = split_clients(train, indices)
    for part, client in zip(indices, clients, strict=True):
        assert torch.equal(client.images, train.images[torch.as_tensor(part)])
        assert client.images.untyped_storage().data_ptr() != train.images.untyped_storage().data_ptr()


def test_average_weights_are_weighted_by_image_count():
    states = [{"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(3)}, {"w": torch.tensor([4.0, 8.0]),
                                                                        "n": torch.tensor(5)}]
    averaged = average_weights(states, [1, 3])
    torch.testing.assert_close(averaged["w"], torch.tensor([(1 + 3 * 4) / 4, (2 + 3 * 8) / 4]))
    assert averaged["n"].item() == 3


def test_one_client_is_plain_training_for_the_same_steps(small):
    data, train, test = small
    device = pick_device("cpu")
    local = LocalTraining(epochs=2, batch_size=50, lr=0.05)
    federated_model = model_for(data)
    fedavg(federated_model, [train], test, device, rounds=2, local=local, seed=7)
    plain = model_for(data)
    for number in (1, 2):  # the oracle: Trainer itself, with the seed the round gives its only client
        Trainer(plain, build_optimizer("sgd", plain.parameters(), 0.05), train, device, batch_size=50, epochs=2,
                seed=7 + 1000 * number).fit()
    for (key, ours), theirs in zip(federated_model.state_dict().items(), plain.state_dict().values(), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6, msg=key)


def test_the_server_hands_each_client_only_its_own_images(small, monkeypatch):
    data, train, test = small
    clients = split_clients(train, client_indices(train.labels, 5, 0.3, seed=2))
    seen = []
    real = federated.train_locally

    def watched(model, images, device, local, seed):  # the real local training, with a note of what it was given
        seen.append(images)
        real(model, images, device, local, seed)

    monkeypatch.setattr(federated, "train_locally", watched)
    fedavg(model_for(data), clients, test, pick_device("cpu"), rounds=2, local=LocalTraining(batch_size=50))
    holding = [c for c in clients if len(c)]
    assert len(seen) == 2 * len(holding)
    assert all(any(given is client for client in holding) for given in seen)  # never pooled, never another's


def test_rounds_raise_accuracy_and_centralised_training_is_the_reference(small):
    data, train, test = small
    device = pick_device("cpu")
    clients = split_clients(train, client_indices(train.labels, 4, None, seed=0))
    history = fedavg(model_for(data), clients, test, device, rounds=4, local=LocalTraining(batch_size=25))
    assert [r.round for r in history] == [1, 2, 3, 4]
    assert history[-1].accuracy > max(history[0].accuracy, 0.5)
    pooled = centralised(model_for(data), train, test, device, rounds=4, local=LocalTraining(batch_size=25))
    assert pooled[-1].accuracy >= history[-1].accuracy - 0.05


def test_impossible_splits_are_refused():
    labels = torch.zeros(5, dtype=torch.int64)
    with pytest.raises(ValueError, match="clients must be between 1 and 5"):
        client_indices(labels, 6, None)
    with pytest.raises(ValueError, match="alpha must be above 0"):
        client_indices(labels, 2, 0.0)


def test_the_lab_deals_every_image_and_compares_with_the_same_fresh_model_on_the_pooled_images(small):
    data, train, test = small
    small_data = Dataset(data.name, data.class_names, train, test)
    device = pick_device("cpu")
    local = LocalTraining(batch_size=100)
    heard = []
    lab = federated_lab(small_data, device, 3, 0.3, 2, local, on_round=lambda arm, r: heard.append((arm, r.round)))
    assert sum(map(sum, lab.mix)) == 600 and len(lab.mix) == 3
    assert [sum(row[c] for row in lab.mix) for c in range(10)] == torch.bincount(train.labels, minlength=10).tolist()
    assert heard == [("federated", 1), ("federated", 2), ("pooled", 1), ("pooled", 2)]
    pooled = centralised(model_for(data), train, test, device, 2, local)  # the oracle: the pooled arm by hand
    assert [r.accuracy for r in lab.pooled] == [r.accuracy for r in pooled]
    alone = federated_lab(small_data, device, 3, 0.3, 2, local, compare_pooled=False)
    assert alone.pooled is None and [r.accuracy for r in alone.federated] == [r.accuracy for r in lab.federated]
