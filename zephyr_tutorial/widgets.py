"""ipywidgets views of notebook 05, built on the plain plotting functions of :mod:`zephyr_tutorial.plots`.

Each view is a function returning a widget box; the maths lives in
:mod:`zephyr_tutorial.dpo.losses` and the drawing in ``plots``, both tested
without a browser. ``interactive_output`` + ``display`` of the figure works in
JupyterLab, classic Jupyter and Colab (no custom widget front-end needed).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PairState:
    """One preference pair as the explorer sees it: four sequence log-probabilities and β."""

    beta: float
    policy_chosen: float
    reference_chosen: float
    policy_rejected: float
    reference_rejected: float

    @property
    def margin(self) -> float:
        """:math:`h = (\\log\\pi_\\theta(y_w) - \\log\\pi_{ref}(y_w)) - (\\log\\pi_\\theta(y_l) - \\log\\pi_{ref}(y_l))`."""
        return (self.policy_chosen - self.reference_chosen) - (self.policy_rejected - self.reference_rejected)

    def summary(self) -> str:
        """The implicit rewards, each loss and the DPO gradient weight at this point, as text."""
        import torch

        from zephyr_tutorial.dpo.losses import dpo_gradient_weight, preference_loss

        h = torch.tensor([self.margin])
        chosen_reward = self.beta * (self.policy_chosen - self.reference_chosen)
        rejected_reward = self.beta * (self.policy_rejected - self.reference_rejected)
        losses = ", ".join(f"{t} {preference_loss(h, self.beta, t).item():.3f}" for t in ("sigmoid", "ipo", "hinge"))
        return (
            f"margin h = {self.margin:+.2f} | rewards: chosen {chosen_reward:+.3f}, rejected {rejected_reward:+.3f} | "
            f"P(chosen ≻ rejected) = {torch.sigmoid(self.beta * h).item():.3f} | losses: {losses} | "
            f"DPO gradient weight σ(r̂_l − r̂_w) = {dpo_gradient_weight(h, self.beta).item():.3f}"
        )


def _show(figure) -> None:
    import matplotlib.pyplot as plt
    from IPython.display import display

    display(figure)
    plt.close(figure)  # keep one copy: the displayed image, not a second one at the end of the cell


def loss_explorer(beta: float = 0.1, logp_range: tuple[float, float] = (-80.0, -1.0)):
    """Sliders for β and the four log-probabilities; live loss and gradient curves of DPO, IPO and hinge."""
    import ipywidgets as widgets

    from zephyr_tutorial.plots import plot_dpo_losses
    from zephyr_tutorial.plots.dpo import BETA_FORMAT

    low, high = logp_range
    style = {"description_width": "150px"}
    layout = widgets.Layout(width="480px")

    def slider(description, value):
        return widgets.FloatSlider(value=value, min=low, max=high, step=0.5, description=description,
                                   style=style, layout=layout, continuous_update=False)

    controls = {
        "beta": widgets.FloatLogSlider(value=beta, base=10, min=-2, max=0, step=0.05, description="β",
                                       readout_format=BETA_FORMAT,  # the figure's title prints β the same way
                                       style=style, layout=layout, continuous_update=False),
        "policy_chosen": slider("log π_θ(y_w|x)", -20.0),
        "reference_chosen": slider("log π_ref(y_w|x)", -22.0),
        "policy_rejected": slider("log π_θ(y_l|x)", -30.0),
        "reference_rejected": slider("log π_ref(y_l|x)", -26.0),
    }
    readout = widgets.HTML()

    def draw(**values):
        state = PairState(**values)
        readout.value = f"<code>{state.summary()}</code>"
        _show(plot_dpo_losses(state.beta, state.margin))

    plots = widgets.interactive_output(draw, controls)
    return widgets.VBox([widgets.VBox(list(controls.values())), readout, plots])


def training_dynamics_view(history: list[dict], title: str = "DPO training"):
    """A slider over the logged steps of a real run, marking that step on the reward/margin/accuracy curves."""
    import ipywidgets as widgets

    from zephyr_tutorial.plots import plot_dpo_training_dynamics

    entries = [e for e in history if "rewards/margins" in e and "step" in e]
    if not entries:
        raise ValueError("the history has no training entries with rewards/margins; was logging_steps set?")
    steps = [e["step"] for e in entries]
    step = widgets.SelectionSlider(options=steps, value=steps[-1], description="step", continuous_update=False,
                                   layout=widgets.Layout(width="480px"))
    readout = widgets.HTML()

    def draw(step):
        entry = entries[steps.index(step)]
        readout.value = "<code>" + " | ".join(
            f"{k} {entry[k]:+.4f}" for k in ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies")
        ) + "</code>"
        _show(plot_dpo_training_dynamics(history, step=step, title=title))

    plots = widgets.interactive_output(draw, {"step": step})
    return widgets.VBox([step, readout, plots])
