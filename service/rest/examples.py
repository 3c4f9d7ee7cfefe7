"""OpenAPI examples that run as they stand against the shipped models."""

from __future__ import annotations

# MNIST test images 9000 (a 7) and 9002 (a 1), 28x28 grayscale PNG.
SEVEN_PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAABwAAAAcCAAAAABXZoBIAAAA20lEQVR42mNgGIbA/N+/axFMKEKMMIbAIm8GBgbD1x"
    "Ce1bFXfxGKWFb//fv3zd+/f//9hQBNJBOy/v79VKiz5ydcsgohx3n/76dIBgYGJw8Pj6S/f/++jGRHkrz30BDKNDv1"
    "9+8xDRSHycDsYN369+0Ke+we0l/89+88XL6t+vd3BQcOOdNP/9aw4tK49t9PE1xydZ//LsQhxe334e8bXPoS//59YY"
    "hdimfym78ncVjInfP37x5O7HKcy//+3WOOXY511d+/z1RxuIX379+/Pbgcyn7q71QW0pIVALvZY5rkxrsHAAAAAElF"
    "TkSuQmCC"
)
ONE_PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAABwAAAAcCAAAAABXZoBIAAAAqElEQVR42mNgoD9gxiIme8rm/nMc6mXbf/zJwiEn1/"
    "7nzyZuHJLVf/7c4schJ3n/z59sHHLiDX/erRLFIZn9589OOIcJVU46FLev/f7++dPgh0Oy9e+fU8I45Hz//j/Fh0Mu"
    "6PsfnHKqn//8QZVDcq0eJwPDJ+z6TE+8+brJFIehS//8eYjLh75v/jyowC7FM+ndn2/uOPSl/fpzMxxnuM35M0meYV"
    "AAAHHkPSsIoR8qAAAAAElFTkSuQmCC"
)

ENCODE = {
    "one_image": {
        "summary": "One PNG digit (any MNIST model)",
        "value": {"images": [SEVEN_PNG]},
    },
    "sampled_z": {
        "summary": "Two digits, a sampled z, seeded (variational models)",
        "value": {"images": [SEVEN_PNG, ONE_PNG], "sample": True, "seed": 7},
    },
    "conditional": {
        "summary": "With labels (model=mnist-cvae)",
        "value": {"images": [SEVEN_PNG, ONE_PNG], "labels": [7, 1]},
    },
}

RECONSTRUCT = {
    "one_image": ENCODE["one_image"],
    "data_url": {
        "summary": "A data URL, as a canvas's toDataURL() gives it",
        "value": {"images": ["data:image/png;base64," + ONE_PNG]},
    },
}

DECODE = {
    "default_model": {
        "summary": "The origin and a point of the default model's 20-D latent space",
        "value": {"latents": [[0.0] * 20, [0.5, -1.0] * 10]},
    },
    "two_d": {
        "summary": "Two points of the 2-D latent map (model=mnist-vae-2d)",
        "value": {"latents": [[0.0, 0.0], [1.5, -0.5]]},
    },
    "analogy": {
        "summary": "Analogy (model=mnist-cvae): one latent drawn as three digits",
        "description": (
            "Encode a digit with its label (POST /encode?model=mnist-cvae with labels [7]), then "
            "decode that latent with other labels: the style is kept, the class changes. "
            "A zero latent stands in here for the latent /encode returns."
        ),
        "value": {"latents": [[0.0] * 3] * 3, "labels": [3, 5, 8]},
    },
}

INTERPOLATE = {
    "images": {
        "summary": "From a 7 to a 1, spherical",
        "value": {
            "start": {"image": SEVEN_PNG},
            "end": {"image": ONE_PNG},
            "steps": 8,
            "method": "spherical",
        },
    },
    "latents": {
        "summary": "Between two latents (model=mnist-vae-2d)",
        "value": {
            "start": {"latent": [-2.0, 0.0]},
            "end": {"latent": [2.0, 0.0]},
            "steps": 10,
            "method": "linear",
        },
    },
}

SCORE = {
    "digits": {
        "summary": "Two digits (any MNIST model): low scores, not anomalous",
        "value": {"images": [SEVEN_PNG, ONE_PNG]},
    },
    "fashion": {
        "summary": "The same digits to model=fashion-vae: see `corrected`",
        "description": (
            "A likelihood model of clothing finds digits *more* likely than clothing "
            "(Nalisnick et al. 2019): the plain score calls them normal, the corrected one "
            "flags them."
        ),
        "value": {"images": [SEVEN_PNG, ONE_PNG]},
    },
}
