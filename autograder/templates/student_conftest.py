"""pytest markers for the public checks, registered from course_config (nothing retyped here)."""
import course_config


def pytest_configure(config):
    for topic in course_config.TOPICS:
        config.addinivalue_line("markers", f"{topic.slug}: every public check of {topic.title}")
        for task in topic.tasks:
            config.addinivalue_line("markers", f"{task.name}: {task.points:g} points, {task.description}")
