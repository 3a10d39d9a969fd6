"""Topic 4: recurrent networks (vanilla RNN, LSTM, GRU) in NumPy, and a Yorùbá character language model."""
