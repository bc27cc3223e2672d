"""Trans-PEFT's tiny_arith module on its old base (v0), validation split: is its shortfall against finetune_old the
FFN knowledge dropping it trains with, or the seeds?

    python results/science/tiny-testbed/trans_peft_arith_validation.py > trans-peft-arith-validation-seeds0-5.json

On the v6 leaderboard (fp32) Trans-PEFT's tiny_arith source is 76.2 +- 6.1 against finetune_old's 84.3 +- 2.2,
within 10 points on 5 of 10 seeds. Its recipe is finetune_old's (the tiny suite on every linear layer) plus FFN
dropping (p_c 0.1; p_i 0, its public script's defaults, kept by the tuning). This trains it as tuned and with
p_c 0 (no dropping: then it is finetune_old's recipe), seeds 0-5, fp32 as `bench tune` trains, validation data
only. Prints {label: [score on v0 per seed]}.
"""

import json

from testbed import run_variants

VARIANTS = {  # label: (method, changes to its tuned recipe)
    "finetune_old (reference)": ("finetune_old", {}),
    "trans_peft as tuned (p_c 0.1)": ("trans_peft", {}),
    "trans_peft, p_c 0 (no dropping)": ("trans_peft", {"p_c": 0.0}),
}


def main():
    print(json.dumps(run_variants("tiny_arith", VARIANTS)))


if __name__ == "__main__":  # the workers are spawned: they import this file without running it
    main()
