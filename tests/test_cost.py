"""Tests of helpers.cost: MAC counts per layer and per exit, checked against hand arithmetic."""

from __future__ import annotations

import keras
import pytest
from keras import layers

from helpers import cost, models

# --------------------------------------------------------------------------- a network small enough to count by hand
#
# images 8x8x3 -> preprocess (Rescaling) -> block_1 (conv 3->4) -> block_2 (conv 4->8) -> final
#                                               \-> exit_1 (conv head, 2 filters)
#                                                                  \-> exit_2 (pool head)
# K = 3 classes. Counting rules: see the docstring of helpers.cost.

RESCALING = 8 * 8 * 3  # one per element = 192

# block_1 on 8x8x3: conv 3x3 3->4 "same" (output 8x8x4), batch norm, ReLU, 2x2 max-pool to 4x4x4.
B1_CONV = (8 * 8 * 4) * (3 * 3 * 3)  # output elements x k_h x k_w x C_in = 256 * 27 = 6,912
B1_BN = 8 * 8 * 4  # one per output element = 256
B1_POOL = (4 * 4 * 4) * (2 * 2)  # output elements x window = 64 * 4 = 256
BLOCK_1 = B1_CONV + B1_BN + B1_POOL  # 7,424

# exit_1 on 4x4x4: conv 3x3 4->2 "same" (4x4x2), ReLU (free), global average pool, dense 2->3.
E1_CONV = (4 * 4 * 2) * (3 * 3 * 4)  # 32 * 36 = 1,152
E1_GAP = 4 * 4 * 2  # one per input element = 32
E1_DENSE = 2 * 3  # inputs x units = 6
EXIT_1 = E1_CONV + E1_GAP + E1_DENSE  # 1,190

# block_2 on 4x4x4: conv 3x3 4->8 (4x4x8), batch norm, 2x2 max-pool to 2x2x8.
B2_CONV = (4 * 4 * 8) * (3 * 3 * 4)  # 128 * 36 = 4,608
B2_BN = 4 * 4 * 8  # 128
B2_POOL = (2 * 2 * 8) * (2 * 2)  # 32 * 4 = 128
BLOCK_2 = B2_CONV + B2_BN + B2_POOL  # 4,864

# exit_2 (pool head) and final on 2x2x8: global average pool (32) + dense 8->3 (24).
EXIT_2 = 2 * 2 * 8 + 8 * 3  # 56
FINAL = 2 * 2 * 8 + 8 * 3  # 56

PLAIN = RESCALING + BLOCK_1 + BLOCK_2 + FINAL  # the final output alone: 12,536
CUMULATIVE = {
    "exit_1": RESCALING + BLOCK_1 + EXIT_1,  # 8,806
    "exit_2": RESCALING + BLOCK_1 + EXIT_1 + BLOCK_2 + EXIT_2,  # 13,726: exit_1 was evaluated on the way
    "final": RESCALING + BLOCK_1 + EXIT_1 + BLOCK_2 + EXIT_2 + FINAL,  # 13,782
}


def _hand_network(final_dropout: float = 0.0) -> keras.Model:
    def make_head(name, in_shape):
        kind = "conv" if name == "exit_1" else "pool"
        return models.exit_head(name, in_shape, 3, kind=kind, conv_filters=2)

    return models.assemble(
        8,
        layers.Rescaling(1 / 255, name="preprocess"),
        [models.vgg_block(1, (8, 8, 3), [4]), models.vgg_block(2, (4, 4, 4), [8])],
        [1, 2],
        make_head,
        models.final_classifier((2, 2, 8), 3, dropout=final_dropout),
        "hand",
    )


@pytest.fixture(scope="module")
def hand() -> keras.Model:
    return _hand_network()


def test_hand_arithmetic_is_what_we_think():
    assert (BLOCK_1, EXIT_1, BLOCK_2, EXIT_2, FINAL) == (7_424, 1_190, 4_864, 56, 56)
    assert PLAIN == 12_536
    assert CUMULATIVE == {"exit_1": 8_806, "exit_2": 13_726, "final": 13_782}


def test_layer_macs_of_each_part(hand):
    block_1 = hand.get_layer("block_1")
    assert cost.layer_macs(block_1.get_layer("conv1")) == B1_CONV
    assert cost.layer_macs(block_1.get_layer("bn1")) == B1_BN
    assert cost.layer_macs(block_1.get_layer("relu1")) == 0
    assert cost.layer_macs(block_1.get_layer("pool")) == B1_POOL
    exit_1 = hand.get_layer("exit_1")
    assert cost.layer_macs(exit_1.get_layer("conv")) == E1_CONV
    assert cost.layer_macs(exit_1.get_layer("gap")) == E1_GAP
    assert cost.layer_macs(exit_1.get_layer("logits")) == E1_DENSE

    expected = {
        "preprocess": RESCALING, "block_1": BLOCK_1, "exit_1": EXIT_1,
        "block_2": BLOCK_2, "exit_2": EXIT_2, "final": FINAL,
    }
    assert {name: cost.layer_macs(hand.get_layer(name)) for name in expected} == expected
    table = cost.layer_table(hand)
    assert (table["MMACs"] * 1e6).round().astype(int).to_dict() == expected


def test_dropout_is_free():
    assert cost.layer_macs(_hand_network(final_dropout=0.3).get_layer("final")) == FINAL


def test_plain_macs(hand):
    assert cost.plain_macs(hand) == PLAIN


def test_exit_costs_are_cumulative_and_include_heads_on_the_way(hand):
    costs = cost.exit_costs(hand)
    assert [c.name for c in costs] == ["exit_1", "exit_2", "final"]
    assert [c.block for c in costs] == ["block_1", "block_2", "block_2"]
    assert [c.head_macs for c in costs] == [EXIT_1, EXIT_2, FINAL]
    assert {c.name: c.cumulative_macs for c in costs} == CUMULATIVE
    for c in costs:
        assert c.relative_cost == pytest.approx(CUMULATIVE[c.name] / PLAIN, rel=1e-12)
    assert cost.relative_costs(hand) == pytest.approx([8_806 / 12_536, 13_726 / 12_536, 13_782 / 12_536])


def test_cost_table(hand):
    table = cost.cost_table(hand)
    assert table.index.name == "exit"
    assert list(table.index) == ["exit_1", "exit_2", "final"]
    assert list(table.columns) == ["after", "head MMACs", "cumulative MMACs", "relative cost"]
    assert table.loc["exit_2", "after"] == "block_2"
    assert table.loc["exit_1", "head MMACs"] == pytest.approx(EXIT_1 / 1e6)
    assert table.loc["final", "cumulative MMACs"] == pytest.approx(CUMULATIVE["final"] / 1e6)
    assert table.loc["final", "relative cost"] == pytest.approx(CUMULATIVE["final"] / PLAIN)


def test_plain_model_relative_cost_is_one():
    plain = models.build_vgg11(3, 32, 0.125, head=None)
    assert cost.relative_costs(plain) == [1.0]


# --------------------------------------------------------------------------- other layer types


def test_layer_with_count_macs_is_trusted():
    class Mystery(layers.Layer):
        def call(self, x):
            return x

        def count_macs(self):
            return 7

    x = inp = keras.Input((4,))
    x = Mystery(name="mystery")(x)
    model = keras.Model(inp, layers.Dense(2, name="d")(x))
    assert cost.plain_macs(model) == 7 + 4 * 2


def test_unknown_layer_type_raises():
    x = inp = keras.Input((4, 4, 3))
    x = layers.LayerNormalization(name="ln")(x)
    model = keras.Model(inp, layers.GlobalAveragePooling2D()(x))
    with pytest.raises(TypeError, match="no MAC rule for layer 'ln' of type LayerNormalization"):
        cost.plain_macs(model)


def test_add_and_average_pooling():
    a = inp = keras.Input((4, 4, 2))
    b = layers.AveragePooling2D(2, strides=1, padding="same", name="avg")(a)  # 4x4x2 out, 2x2 window
    out = layers.Add(name="add")([a, b, a])  # two extra inputs per output element
    model = keras.Model(inp, out)
    assert cost.layer_macs(model.get_layer("avg")) == 32 * 4
    assert cost.layer_macs(model.get_layer("add")) == 32 * 2


# --------------------------------------------------------------------------- the real VGG11 (width 1, 96 px)


@pytest.fixture(scope="module")
def vgg_conv() -> keras.Model:
    return models.build_vgg11(num_classes=5, input_size=96, width=1.0, head="conv")


def test_vgg11_block_1_and_conv_head_by_hand(vgg_conv):
    # block_1 on 96x96x3: conv 96*96*64*27, BN 96*96*64, max-pool to 48x48x64 with a 2x2 window.
    block_1 = 96 * 96 * 64 * 27 + 96 * 96 * 64 + 48 * 48 * 64 * 4
    # exit_1 on 48x48x64: conv 3x3 64->128 on 48x48, GAP over 48*48*128, dense 128->5.
    head_1 = 48 * 48 * 128 * 9 * 64 + 48 * 48 * 128 + 128 * 5
    assert cost.layer_macs(vgg_conv.get_layer("block_1")) == block_1 == 17_104_896
    assert cost.layer_macs(vgg_conv.get_layer("exit_1")) == head_1 == 170_164_864


def test_vgg11_conv_head_pitfall(vgg_conv):
    # The course-project pitfall: the first conv head costs about ten times its block, and the
    # final exit of the conv-head model costs more than the plain network.
    costs = cost.exit_costs(vgg_conv)
    assert costs[0].head_macs > 5 * cost.layer_macs(vgg_conv.get_layer("block_1"))
    assert costs[-1].relative_cost > 1.0
    cumulative = [c.cumulative_macs for c in costs]
    assert cumulative == sorted(cumulative)


def test_vgg11_pool_heads_are_cheap():
    pool = models.build_vgg11(num_classes=5, input_size=96, width=1.0, head="pool")
    rel = cost.relative_costs(pool)
    assert 1.0 < rel[-1] < 1.001
    assert rel == sorted(rel)
    # The first exit costs block_1 and a tiny head: far below the plain network.
    assert rel[0] < 0.05


def test_vgg11_exit_5_saves_no_backbone_work(vgg_conv):
    # exit_5 reads block_5, the block the final classifier reads: once a sample reaches it the
    # whole backbone has run, and leaving there saves only the final classifier's own layers.
    costs = cost.exit_costs(vgg_conv)
    exit_5, final = costs[-2], costs[-1]
    assert exit_5.block == final.block == "block_5"
    assert final.cumulative_macs - exit_5.cumulative_macs == final.head_macs
    assert final.head_macs == 512 * 3 * 3 + 512 * 5  # GAP over 3x3x512, dense 512->5 weights (96 px, width 1)
    assert final.relative_cost - exit_5.relative_cost < 1e-4


def test_a_removed_head_is_not_counted(hand):
    # Without exit_1 (models.select_exits) its head is not in the network: exit_2 and the
    # final classifier cost EXIT_1 less than with it, and the plain network is unchanged.
    without = models.select_exits(hand, ["exit_2"])
    assert cost.plain_macs(without) == PLAIN
    assert [c.cumulative_macs for c in cost.exit_costs(without)] == [
        CUMULATIVE["exit_2"] - EXIT_1, CUMULATIVE["final"] - EXIT_1,
    ]
    assert [c.cumulative_macs for c in cost.exit_costs(models.select_exits(hand, [1]))] == [
        CUMULATIVE["exit_1"], CUMULATIVE["final"] - EXIT_2,
    ]
    assert cost.relative_costs(models.select_exits(hand, [])) == [1.0]


def test_subset_costs_by_hand(hand):
    table = cost.subset_costs(hand)
    assert list(table) == [(), ("exit_1",), ("exit_2",), ("exit_1", "exit_2")]
    assert table[()] == [1.0]
    assert table[("exit_1",)] == pytest.approx([CUMULATIVE["exit_1"] / PLAIN, (CUMULATIVE["final"] - EXIT_2) / PLAIN])
    assert table[("exit_2",)] == pytest.approx([(CUMULATIVE["exit_2"] - EXIT_1) / PLAIN,
                                                (CUMULATIVE["final"] - EXIT_1) / PLAIN])
    assert table[("exit_1", "exit_2")] == pytest.approx(cost.relative_costs(hand))
