"""Performance predictors behind one Predictor protocol: LLM, distilled, supernet, fitted.

``nasstudio.predict.llm`` (LLM-PP) and ``nasstudio.predict.evaluate`` load openai and scipy;
they are imported on demand so that this package stays light.
"""

from nasstudio.predict.base import PredictionResult, Predictor, to_predictions

__all__ = ["PredictionResult", "Predictor", "to_predictions"]
